/* edgeecg_run: the edgeecg streaming front end and int8 classifier on Linux (Raspberry Pi).
 *
 *     edgeecg_run [--channel N] [--channel2 N] [--samples N] RECORD    a WFDB record: RECORD.hea, or its base name
 *     edgeecg_run [--samples N] --raw FILE                 int16 little-endian samples (FILE "-": stdin)
 *
 * The samples must be at PREFIX_STREAM_ADC_HZ Hz with PREFIX_STREAM_ADC_GAIN_X1000 / 1000 ADC counts per
 * mV; a WFDB header's rate and gain are checked. WFDB: single-segment records whose signal is stored in
 * format 212 or 16 (one sample per frame, no skew; a byte offset is fine), signal files beside the
 * header. The signal is the one named LEAD (the lead the model was trained on), or the 0-based
 * --channel N. --samples N: play at most the first N samples (frames).
 *
 * A two-lead build (PREFIX_STREAM_LEADS 2) also plays a second signal of the same signal file: the one
 * SECOND_LEAD names ("other": the other signal of a two-signal record; a name; a 0-based index), or
 * --channel2 N; raw input then holds the two leads' samples interleaved (first, second, first, ...).
 *
 * Output: one line per classified beat on stdout (prefix_print.h):
 *     R_PEAK CLASS LOGIT_N LOGIT_S LOGIT_V LOGIT_F LOGIT_Q
 * R_PEAK is the ADC sample index of the R peak in the input, CLASS a letter of PREFIX_CLASS_LETTERS.
 * Errors: one line on stderr and exit status 1 (2 for a bad command line).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prefix_stream.h"
#include "prefix_print.h"

#define LEAD "@LEAD@"
#define SECOND_LEAD "@SECOND_LEAD@"
#define LEADS PREFIX_STREAM_LEADS
#define MAX_SIGNALS 32
#define MAX_LINE 1024
#define USAGE "usage: edgeecg_run [--channel N] [--channel2 N] [--samples N] RECORD[.hea] | edgeecg_run [--samples N] --raw FILE|-"

typedef struct {
    char file[MAX_LINE];        /* signal file name, relative to the header's directory */
    long format;                /* 16, 212, ... */
    long offset;                /* byte offset of the first sample in the file */
    double gain;                /* ADC counts per physical unit (mV) */
    char name[MAX_LINE];        /* the signal's description: its lead name */
} signal_t;

typedef struct {
    int n_sig;
    double fs;
    long n_samp;                /* samples per signal; 0: not given (read to the end of the file) */
    signal_t sig[MAX_SIGNALS];
} header_t;

static void fail(int status, const char *fmt, ...)
{
    va_list ap;
    fputs("edgeecg_run: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* A whole-token integer >= 0, or -1. */
static long parse_count(const char *s)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    return (end == s || *end != '\0' || errno != 0 || v < 0) ? -1 : v;
}

/* The next whitespace-separated token of *p into tok (MAX_LINE bytes); 0 when there is none. */
static int next_token(const char **p, char *tok)
{
    size_t n = 0;
    while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n') {
        ++*p;
    }
    while (**p != '\0' && **p != ' ' && **p != '\t' && **p != '\r' && **p != '\n') {
        tok[n++] = *(*p)++;
    }
    tok[n] = '\0';
    return n > 0;
}

/* "NAME NSIG [FS[/CFREQ][(BASE)] [NSAMP ...]]" */
static void parse_record_line(const char *path, const char *p, header_t *h)
{
    char tok[MAX_LINE], *end;
    long n;
    next_token(&p, tok);
    if (strchr(tok, '/') != NULL) {
        fail(1, "%s: multi-segment records are not supported", path);
    }
    if (!next_token(&p, tok) || (n = parse_count(tok)) < 1 || n > MAX_SIGNALS) {
        fail(1, "%s: odd record line (number of signals: 1 to %d)", path, MAX_SIGNALS);
    }
    h->n_sig = (int)n;
    h->fs = 250.0;                                          /* WFDB's default */
    h->n_samp = 0;
    if (next_token(&p, tok)) {
        h->fs = strtod(tok, &end);
        if (end == tok || (*end != '\0' && *end != '/' && *end != '(') || !(h->fs > 0)) {
            fail(1, "%s: odd sampling frequency '%s'", path, tok);
        }
        if (next_token(&p, tok) && (h->n_samp = parse_count(tok)) < 0) {
            fail(1, "%s: odd number of samples '%s'", path, tok);
        }
    }
}

/* "FILE FORMAT[xSPF][:SKEW][+OFFSET] [GAIN[(BASELINE)][/UNITS] [RES [ZERO [INIT [CHECKSUM [BLOCK [DESC]]]]]]]" */
static void parse_signal_line(const char *path, const char *p, int i, signal_t *s)
{
    char tok[MAX_LINE], *end;
    size_t n;
    int k;
    next_token(&p, s->file);
    if (!next_token(&p, tok)) {
        fail(1, "%s: signal %d has no format", path, i);
    }
    s->format = strtol(tok, &end, 10);
    s->offset = 0;
    if (end == tok) {
        fail(1, "%s: signal %d: odd format '%s'", path, i, tok);
    }
    while (*end != '\0') {
        char c = *end++;
        long v = strtol(end, &end, 10);
        if (c == 'x' && v != 1) {
            fail(1, "%s: signal %d: %ld samples per frame are not supported", path, i, v);
        } else if (c == ':' && v != 0) {
            fail(1, "%s: signal %d: skew is not supported", path, i);
        } else if (c == '+' && v >= 0) {
            s->offset = v;
        } else if (c != 'x' && c != ':') {
            fail(1, "%s: signal %d: odd format '%s'", path, i, tok);
        }
    }
    s->gain = 0.0;
    if (next_token(&p, tok)) {
        s->gain = strtod(tok, &end);
        if (end == tok || (*end != '\0' && *end != '(' && *end != '/')) {
            fail(1, "%s: signal %d: odd gain '%s'", path, i, tok);
        }
    }
    if (s->gain == 0.0) {
        s->gain = 200.0;                                    /* WFDB's default */
    }
    for (k = 0; k < 5 && next_token(&p, tok); ++k) {        /* resolution, zero, initial value, checksum, block */
    }
    while (*p == ' ' || *p == '\t') {
        ++p;
    }
    strcpy(s->name, p);
    n = strlen(s->name);
    while (n > 0 && (s->name[n - 1] == '\n' || s->name[n - 1] == '\r' || s->name[n - 1] == ' ')) {
        s->name[--n] = '\0';
    }
}

static void read_header(const char *path, header_t *h)
{
    char line[MAX_LINE];
    int seen_record = 0, n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fail(1, "%s: %s", path, strerror(errno));
    }
    while (n < h->n_sig || !seen_record) {
        const char *p = line;
        if (fgets(line, sizeof line, f) == NULL) {
            break;
        }
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fail(1, "%s: line longer than %d characters", path, MAX_LINE - 2);
        }
        while (*p == ' ' || *p == '\t') {
            ++p;
        }
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0') {
            continue;
        }
        if (!seen_record) {
            parse_record_line(path, p, h);
            seen_record = 1;
        } else {
            parse_signal_line(path, p, n, &h->sig[n]);
            ++n;
        }
    }
    fclose(f);
    if (!seen_record) {
        fail(1, "%s: no record line", path);
    }
    if (n < h->n_sig) {
        fail(1, "%s: %d signal lines for %d signals", path, n, h->n_sig);
    }
}

/* Reads one signal's samples: format 16 (int16 little-endian) or 212 (two 12-bit samples in 3 bytes). */
typedef struct {
    FILE *f;
    const char *path;
    long format;
    int have;                   /* 212: the second sample of the last 3 bytes is waiting */
    int pending;
} reader_t;

static int sign_extend(int v, int bits)
{
    return v >= (1 << (bits - 1)) ? v - (1 << bits) : v;
}

static int next_value(reader_t *r)
{
    unsigned char b[3];
    size_t got;
    if (r->format == 16) {
        got = fread(b, 1, 2, r->f);
        if (got != 2) {
            fail(1, "%s: %s", r->path, ferror(r->f) ? "read error" : "unexpected end of file");
        }
        return sign_extend(b[0] | (b[1] << 8), 16);
    }
    if (r->have) {
        r->have = 0;
        return r->pending;
    }
    got = fread(b, 1, 3, r->f);
    if (got < 2) {
        fail(1, "%s: %s", r->path, ferror(r->f) ? "read error" : "unexpected end of file");
    }
    if (got == 3) {
        r->pending = sign_extend(b[2] | ((b[1] & 0xf0) << 4), 12);
        r->have = 1;
    }
    return sign_extend(b[0] | ((b[1] & 0x0f) << 8), 12);
}

static prefix_stream_t st;

static void push(const int16_t sample[LEADS])
{
    prefix_beat_t beat;
    char line[128];
    if (prefix_stream_push_leads(&st, sample, &beat)) {
        prefix_beat_line(line, sizeof line, &beat);
        puts(line);
    }
}

static void play_raw(const char *path, long max_samples)
{
    unsigned char b[2 * LEADS];
    int16_t sample[LEADS];
    long n = 0;
    size_t got = sizeof b;
    int lead;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fail(1, "%s: %s", path, strerror(errno));
    }
    while ((max_samples < 0 || n < max_samples) && (got = fread(b, 1, sizeof b, f)) == sizeof b) {
        for (lead = 0; lead < LEADS; ++lead) {
            sample[lead] = (int16_t)sign_extend(b[2 * lead] | (b[2 * lead + 1] << 8), 16);
        }
        push(sample);
        ++n;
    }
    if (ferror(f)) {
        fail(1, "%s: read error", path);
    }
    if (got != 0 && got != sizeof b) {
        fail(1, "%s: odd number of bytes (int16 samples expected, %d per frame)", path, LEADS);
    }
    if (f != stdin) {
        fclose(f);
    }
}

/* The signal of the second lead beside signal c: --channel2, else SECOND_LEAD (see the top). */
static int second_channel(const char *hea, const header_t *h, int c, int channel2)
{
    int i, found = -1;
    long index = parse_count(SECOND_LEAD);
    if (channel2 >= 0 || index >= 0) {
        found = channel2 >= 0 ? channel2 : (int)index;
        if (found >= h->n_sig) {
            fail(1, "%s: no signal %d (the record has %d)", hea, found, h->n_sig);
        }
    } else if (strcmp(SECOND_LEAD, "other") == 0) {
        if (h->n_sig != 2) {
            fail(1, "%s: the second lead is the other signal of a two-signal record; this one has %d "
                    "(give --channel2 N)", hea, h->n_sig);
        }
        found = 1 - c;
    } else {
        for (i = 0; i < h->n_sig && found < 0; ++i) {
            found = strcmp(h->sig[i].name, SECOND_LEAD) == 0 ? i : -1;
        }
        if (found < 0) {
            fail(1, "%s: no %s signal (give --channel2 N, 0 to %d)", hea, SECOND_LEAD, h->n_sig - 1);
        }
    }
    if (found == c) {
        fail(1, "%s: the second lead is signal %d, the first lead's", hea, c);
    }
    return found;
}

static void play_record(const char *arg, int channel, int channel2, long max_samples)
{
    static header_t h;
    char hea[MAX_LINE], dat[2 * MAX_LINE];
    const char *slash;
    reader_t r;
    long size, bytes, frames, n;
    int i, k = 0, pos[LEADS] = {0}, lead, chan[LEADS] = {0}, c = channel;
    int16_t sample[LEADS] = {0};
    size_t len = strlen(arg);

    if (len + 5 > sizeof hea) {
        fail(1, "%s: path too long", arg);
    }
    strcpy(hea, arg);
    if (len < 4 || strcmp(hea + len - 4, ".hea") != 0) {
        strcat(hea, ".hea");
    }
    read_header(hea, &h);
    if (c >= h.n_sig) {
        fail(1, "%s: no signal %d (the record has %d)", hea, c, h.n_sig);
    }
    for (i = 0; c < 0 && i < h.n_sig; ++i) {
        if (strcmp(h.sig[i].name, LEAD) == 0) {
            c = i;
        }
    }
    if (c < 0) {
        fail(1, "%s: no %s signal (give --channel N, 0 to %d)", hea, LEAD, h.n_sig - 1);
    }
    chan[0] = c;
    if (LEADS > 1) {
        chan[LEADS - 1] = second_channel(hea, &h, c, channel2);
        if (strcmp(h.sig[chan[LEADS - 1]].file, h.sig[c].file) != 0) {
            fail(1, "%s: signals %d and %d are in different files (not supported)", hea, c, chan[LEADS - 1]);
        }
    }
    if (h.fs < PREFIX_STREAM_ADC_HZ - 1e-6 || h.fs > PREFIX_STREAM_ADC_HZ + 1e-6) {
        fail(1, "%s: sampled at %g Hz, this build takes %g Hz", hea, h.fs, (double)PREFIX_STREAM_ADC_HZ);
    }
    for (lead = 0; lead < LEADS; ++lead) {
        const int cl = chan[lead];
        if (h.sig[cl].gain * 1000.0 < PREFIX_STREAM_ADC_GAIN_X1000 - 0.5 ||
            h.sig[cl].gain * 1000.0 > PREFIX_STREAM_ADC_GAIN_X1000 + 0.5) {
            fail(1, "%s: signal %d has %g ADC counts per mV, this build takes %g", hea, cl, h.sig[cl].gain,
                 PREFIX_STREAM_ADC_GAIN_X1000 / 1000.0);
        }
    }
    if (h.sig[c].format != 16 && h.sig[c].format != 212) {
        fail(1, "%s: signal %d: format %ld is not supported (only 212 and 16)", hea, c, h.sig[c].format);
    }
    for (i = 0; i < h.n_sig; ++i) {                 /* the signals stored in the same file, frame by frame */
        if (strcmp(h.sig[i].file, h.sig[c].file) == 0) {
            if (h.sig[i].format != h.sig[c].format) {
                fail(1, "%s: signals of different formats in %s are not supported", hea, h.sig[c].file);
            }
            for (lead = 0; lead < LEADS; ++lead) {
                pos[lead] = i == chan[lead] ? k : pos[lead];
            }
            ++k;
        }
    }
    slash = strrchr(hea, '/');
    snprintf(dat, sizeof dat, "%.*s%s", slash ? (int)(slash - hea + 1) : 0, hea, h.sig[c].file);
    r.path = dat;
    r.format = h.sig[c].format;
    r.have = 0;
    r.pending = 0;
    if ((r.f = fopen(dat, "rb")) == NULL) {
        fail(1, "%s: %s", dat, strerror(errno));
    }
    if (fseek(r.f, 0, SEEK_END) != 0 || (size = ftell(r.f)) < 0 || fseek(r.f, h.sig[c].offset, SEEK_SET) != 0) {
        fail(1, "%s: cannot seek", dat);
    }
    bytes = size - h.sig[c].offset;
    if (bytes < 0) {
        fail(1, "%s: truncated signal file (%ld bytes, the samples start at byte %ld)", dat, size, h.sig[c].offset);
    }
    frames = (r.format == 16 ? bytes / 2 : bytes * 2 / 3) / k;
    if (h.n_samp > 0) {
        long need = h.sig[c].offset + (r.format == 16 ? 2 * h.n_samp * k : (3 * h.n_samp * k + 1) / 2);
        if (size < need) {
            fail(1, "%s: truncated signal file (%ld bytes, header needs %ld)", dat, size, need);
        }
        frames = h.n_samp;
    }
    if (max_samples >= 0 && max_samples < frames) {
        frames = max_samples;
    }
    for (n = 0; n < frames; ++n) {
        for (i = 0; i < k; ++i) {
            int v = next_value(&r);
            for (lead = 0; lead < LEADS; ++lead) {
                if (i == pos[lead]) {
                    sample[lead] = (int16_t)v;
                }
            }
        }
        push(sample);
    }
    fclose(r.f);
}

int main(int argc, char **argv)
{
    const char *record = NULL, *raw = NULL;
    long channel = -1, channel2 = -1, max_samples = -1;
    int i;
    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts(USAGE);
            return 0;
        } else if (strcmp(argv[i], "--channel") == 0 && i + 1 < argc) {
            if ((channel = parse_count(argv[++i])) < 0 || channel >= MAX_SIGNALS) {
                fail(2, "--channel %s: expected a signal number (0, 1, ...)", argv[i]);
            }
        } else if (strcmp(argv[i], "--channel2") == 0 && i + 1 < argc && LEADS > 1) {
            if ((channel2 = parse_count(argv[++i])) < 0 || channel2 >= MAX_SIGNALS) {
                fail(2, "--channel2 %s: expected a signal number (0, 1, ...)", argv[i]);
            }
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            if ((max_samples = parse_count(argv[++i])) < 0) {
                fail(2, "--samples %s: expected a number of samples", argv[i]);
            }
        } else if (strcmp(argv[i], "--raw") == 0 && i + 1 < argc && raw == NULL) {
            raw = argv[++i];
        } else if (argv[i][0] != '-' && record == NULL) {
            record = argv[i];
        } else {
            fail(2, "%s", USAGE);
        }
    }
    if ((record == NULL) == (raw == NULL) || (raw != NULL && (channel >= 0 || channel2 >= 0))) {
        fail(2, "%s", USAGE);
    }
    prefix_stream_init(&st);
    if (raw != NULL) {
        play_raw(raw, max_samples);
    } else {
        play_record(record, (int)channel, (int)channel2, max_samples);
    }
    if (fflush(stdout) != 0) {
        fail(1, "stdout: %s", strerror(errno));
    }
    return 0;
}
