/* edgeecg bench harness for the generated C library: the same source runs on the host, under
 * qemu-user (aarch64 Linux) and bare metal under qemu-system with semihosting file I/O.
 *
 *   bench IN OUT          classify every record of IN (int8 beat, then int8 RR features),
 *                         write the int8 logits of each, then its class (one byte), to OUT
 *   bench IN OUT skip     the same reads and writes without classifying: the instruction
 *                         baseline that is subtracted to get instructions per beat
 *   bench IN OUT time T   (host builds with -DBENCH_TIMING) also write the nanoseconds of
 *                         each classify call to T as uint32
 */
#ifdef BENCH_TIMING
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "${p}_model.h"

#define RR_BUF (${P}_RR_LEN > 0 ? ${P}_RR_LEN : 1)

int main(int argc, char **argv)
{
    static int8_t beat[${P}_BEAT_LEN], rr[RR_BUF], logits[${P}_N_CLASSES];
    FILE *in, *out, *times = NULL;
    int skip = argc > 3 && strcmp(argv[3], "skip") == 0;
    if (argc < 3 || (in = fopen(argv[1], "rb")) == NULL || (out = fopen(argv[2], "wb")) == NULL) {
        fprintf(stderr, "usage: bench IN OUT [skip | time TIMES]\n");
        return 2;
    }
#ifdef BENCH_TIMING
    if (argc > 4 && strcmp(argv[3], "time") == 0 && (times = fopen(argv[4], "wb")) == NULL) {
        return 2;
    }
#endif
    while (fread(beat, 1, sizeof beat, in) == sizeof beat) {
        if (${P}_RR_LEN > 0 && fread(rr, 1, ${P}_RR_LEN, in) != ${P}_RR_LEN) {
            return 3;
        }
        int8_t cls = 0;
        memset(logits, 0, sizeof logits);
        if (!skip) {
#ifdef BENCH_TIMING
            struct timespec t0, t1;
            uint32_t ns;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            cls = (int8_t)${p}_classify(beat, rr, logits);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ns = (uint32_t)((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec));
            if (times != NULL) {
                fwrite(&ns, sizeof ns, 1, times);
            }
#else
            cls = (int8_t)${p}_classify(beat, rr, logits);
#endif
        }
        fwrite(logits, 1, sizeof logits, out);
        fwrite(&cls, 1, 1, out);
    }
    fclose(in);
    fclose(out);
    if (times != NULL) {
        fclose(times);
    }
    return 0;
}
