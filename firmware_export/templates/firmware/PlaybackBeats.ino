// PlaybackBeats: edgeecg example for Arduino.
//
// Plays back ECG_SAMPLE_N ADC samples (@SECONDS@ s of MIT-BIH record ECG_SAMPLE_RECORD, lead @LEAD@,
// ecg_sample.h) through the streaming front end and int8 classifier of this library, one sample per
// loop(), and prints one line per classified beat on Serial (format: prefix_print.h; the lines must
// equal expected_playback.txt of the firmware folder).
//
// ADC hook: read_adc_sample() below. For a live ECG, replace its body with a read of your ADC that
// waits for the next sample at PREFIX_STREAM_ADC_HZ Hz (e.g. analogRead() paced by micros() or a timer
// interrupt), scaled to PREFIX_STREAM_ADC_GAIN_X1000 / 1000 ADC counts per mV (any offset is fine: the
// band-pass removes it), and return 1 for every sample.
#include <prefix_stream.h>
#include <prefix_print.h>
#include "ecg_sample.h"

static prefix_stream_t st;          // the front end's whole state
static long beats = 0;
static bool done = false;

// The next ADC sample of each lead into sample[]: 1, or 0 when there are no more (the playback
// has ended).
static int read_adc_sample(int16_t sample[PREFIX_STREAM_LEADS])
{
    static long next = 0;
    int lead;
    if (next >= ECG_SAMPLE_N) {
        return 0;
    }
    for (lead = 0; lead < PREFIX_STREAM_LEADS; ++lead) {
        sample[lead] = ecg_sample[next * PREFIX_STREAM_LEADS + lead];
    }
    ++next;
    return 1;
}

void setup()
{
    char line[96];
    Serial.begin(115200);
    while (!Serial) {
    }
    prefix_stream_init(&st);
    snprintf(line, sizeof line, "# edgeecg playback: record %s, %ld samples at %d Hz", ECG_SAMPLE_RECORD,
             (long)ECG_SAMPLE_N, ECG_SAMPLE_HZ);
    Serial.println(line);
}

void loop()
{
    char line[96];
    int16_t sample[PREFIX_STREAM_LEADS];
    prefix_beat_t beat;
    if (!read_adc_sample(sample)) {
        if (!done) {
            snprintf(line, sizeof line, "# done: %ld beats", beats);
            Serial.println(line);
            done = true;
        }
        return;
    }
    if (prefix_stream_push_leads(&st, sample, &beat)) {
        prefix_beat_line(line, sizeof line, &beat);
        Serial.println(line);
        ++beats;
    }
}
