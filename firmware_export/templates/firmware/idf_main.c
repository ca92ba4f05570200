/* main.c: edgeecg playback example for ESP-IDF.
 *
 * Plays back ECG_SAMPLE_N ADC samples (@SECONDS@ s of MIT-BIH record ECG_SAMPLE_RECORD, lead @LEAD@,
 * ecg_sample.h) through the streaming front end and int8 classifier of components/edgeecg, and prints
 * one line per classified beat on the console (format: prefix_print.h). The lines must equal
 * expected_playback.txt beside this project.
 *
 * ADC hook: read_adc_sample() below. For a live ECG, replace its body with a read of your ADC that
 * waits for the next sample at PREFIX_STREAM_ADC_HZ Hz (for example the adc_continuous driver at that
 * rate, or adc_oneshot_read() from a task woken by a PREFIX_STREAM_ADC_HZ Hz esp_timer), scaled to
 * PREFIX_STREAM_ADC_GAIN_X1000 / 1000 ADC counts per mV (any offset is fine: the band-pass removes it),
 * and return 1 for every sample. */
#include <stdio.h>
#include "prefix_stream.h"
#include "prefix_print.h"
#include "ecg_sample.h"

void app_main(void);

/* The next ADC sample of each lead into sample[]: 1, or 0 when there are no more (the playback
 * has ended). */
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

void app_main(void)
{
    static prefix_stream_t st;          /* the front end's whole state: static, not on the task stack */
    prefix_beat_t beat;
    char line[96];
    int16_t sample[PREFIX_STREAM_LEADS];
    long beats = 0;

    prefix_stream_init(&st);
    printf("# edgeecg playback: record %s, %ld samples at %d Hz\n", ECG_SAMPLE_RECORD, (long)ECG_SAMPLE_N,
           ECG_SAMPLE_HZ);
    while (read_adc_sample(sample)) {
        if (prefix_stream_push_leads(&st, sample, &beat)) {
            prefix_beat_line(line, sizeof line, &beat);
            printf("%s\n", line);
            ++beats;
        }
    }
    printf("# done: %ld beats\n", beats);
}
