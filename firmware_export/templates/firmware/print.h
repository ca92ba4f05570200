/* prefix_print.h: one text line per classified beat, the format every edgeecg example prints
 * (and `edgeecg firmware` checks against the Python twin):
 *
 *     R_PEAK CLASS LOGIT_N LOGIT_S LOGIT_V LOGIT_F LOGIT_Q
 *
 * R_PEAK: the beat's R peak as an index of the ADC samples pushed since init/reset
 * (PREFIX_ADC_INDEX of the 180 Hz r_peak, edgeecg.stream.rate.RateConverter.adc_index; modulo 2^32:
 * after 138 days at 360 Hz). CLASS: the AAMI class letter of beat->cls. LOGIT_*: the int8 logits, in
 * class order. Example: "1837 N 97 -41 -77 -104 -113". */
#ifndef PREFIX_PRINT_H
#define PREFIX_PRINT_H

#include <stddef.h>
#include <stdio.h>
#include "prefix_stream.h"

#define PREFIX_CLASS_LETTERS "@CLASSES@"

#if PREFIX_QRS_RATE_TAPS == 0           /* a block sum of RATE_DOWN samples */
#define PREFIX_ADC_INDEX(r) ((int64_t)(r) * PREFIX_QRS_RATE_DOWN)
#else                                   /* r DOWN / UP minus the FIR's group delay, rounded, >= 0 */
#define PREFIX_ADC_NUM(r) (2 * (int64_t)(r) * PREFIX_QRS_RATE_DOWN - \
                           ((int64_t)PREFIX_QRS_RATE_UP * PREFIX_QRS_RATE_TAPS - 1) + PREFIX_QRS_RATE_UP)
#define PREFIX_ADC_INDEX(r) (PREFIX_ADC_NUM(r) > 0 ? PREFIX_ADC_NUM(r) / (2 * PREFIX_QRS_RATE_UP) : 0)
#endif

/* Writes the line (no newline) into buf; returns what snprintf returns for the whole line. */
static inline int prefix_beat_line(char *buf, size_t size, const prefix_beat_t *beat)
{
    int i, n = snprintf(buf, size, "%lu %c", (unsigned long)((uint64_t)PREFIX_ADC_INDEX(beat->r_peak) & 0xFFFFFFFFu),
                        PREFIX_CLASS_LETTERS[beat->cls]);
    for (i = 0; i < PREFIX_N_CLASSES && n >= 0 && (size_t)n < size; ++i) {
        n += snprintf(buf + n, size - (size_t)n, " %d", beat->logits[i]);
    }
    return n;
}

#endif /* PREFIX_PRINT_H */
