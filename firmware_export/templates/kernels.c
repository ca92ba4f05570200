/* int8 kernels: TFLite's reference arithmetic (MultiplyByQuantizedMultiplier), C99, no float.
 *
 * Every layer computes BLOCK output channels at a time: their weights are stored as
 * (channel block, input position, BLOCK), so one input value is loaded once and multiplied into
 * BLOCK accumulators that the compiler keeps in registers (scalar cores) or in one vector
 * register (SIMD hosts). Layers whose width is not a multiple of BLOCK are zero-padded at
 * generation time; the padding channels are computed and never stored. */

/* TFLite's MultiplyByQuantizedMultiplier for a multiplier in [0, 2^31), as the int8 kernels use it:
 * acc * multiplier * 2^(shift - 31), the left shift saturating to int32, then two roundings.
 * SaturatingRoundingDoublingHighMul rounds half away from zero; for both signs that equals
 * (x * m + 2^30) >> 31 (floor), and its one saturating case (both operands INT32_MIN) cannot
 * occur with m >= 0; the low 32 bits of that shift are the same whether it is arithmetic or
 * logical, and the logical one vectorizes. RoundingDivideByPOT then rounds half away from zero
 * again. Right shifts of negative int32 values are arithmetic and conversions to int32 wrap, as
 * on every compiler TFLite itself supports. Branch-free, so that a loop over a block vectorizes. */
static int32_t requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t mask = (int32_t)((1u << right) - 1u);
#if LEFT_SHIFT
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t limit = INT32_MAX >> left;
    const int32_t scaled = acc > limit ? INT32_MAX : (acc < -limit - 1 ? INT32_MIN : (int32_t)((uint32_t)acc << left));
#else
    const int32_t scaled = acc;     /* every shift <= 0: nothing to shift left or saturate */
#endif
    const int32_t high = (int32_t)((uint64_t)((int64_t)scaled * multiplier + ((int64_t)1 << 30)) >> 31);
    return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0) ? 1 : 0);
}

/* Requantize BLOCK accumulators to int8 and store the first n. On SIMD hosts (SSE2, NEON) the
 * int32 arithmetic and the narrowing to int8 are two loops, kept rolled, so that the compiler
 * vectorizes the first one whole; scalar cores do both in one pass. */
static void store_block(const int32_t acc[BLOCK], const int32_t *mult, const int32_t *shift, int32_t n,
                        int32_t out_zp, int32_t act_min, int32_t act_max, int8_t *out)
{
    int32_t b;
#if defined(__SSE2__) || defined(__ARM_NEON)
    int32_t y[BLOCK];
    int8_t y8[BLOCK];
#pragma GCC unroll 1
    for (b = 0; b < BLOCK; ++b) {
        const int32_t v = requantize(acc[b], mult[b], shift[b]) + out_zp;
        y[b] = v < act_min ? act_min : (v > act_max ? act_max : v);
    }
    for (b = 0; b < BLOCK; ++b) {
        y8[b] = (int8_t)y[b];
    }
    memcpy(out, y8, (size_t)n);
#else
    for (b = 0; b < n; ++b) {
        const int32_t v = requantize(acc[b], mult[b], shift[b]) + out_zp;
        out[b] = (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
    }
#endif
}

/* acc[b] += sum_j x[j] * w[j][b]: n input values against one block of weights (n, BLOCK). */
static void dot_block(int32_t acc[BLOCK], const int8_t *x, int32_t x_zp, const int8_t *w, int32_t n)
{
    int32_t a[BLOCK], j, b;
    memcpy(a, acc, sizeof a);
    for (j = 0; j < n; ++j) {
        const int32_t xj = (int32_t)x[j] - x_zp;
#pragma GCC unroll 32
        for (b = 0; b < BLOCK; ++b) {
            a[b] += xj * (int32_t)w[j * BLOCK + b];
        }
    }
    memcpy(acc, a, sizeof a);
}

/* Channels-last 1-D convolution, stride 1, SAME padding; weights (cout / BLOCK, k * cin, BLOCK),
 * input position j = tap * cin + channel, so the window of output t is the contiguous run
 * in[(t - pad) * cin ...]. Where the window lies inside the input,
 * sum((x - in_zp) * w) = sum(x * w) - in_zp * sum(w): the second term is folded into bias_zp at
 * generation time. The (k - 1) edge positions subtract the zero point and skip the padding taps. */
static void conv1d_s8(const int8_t *in, int32_t len, int32_t cin, int32_t in_zp,
                      const int8_t *w, const int32_t *bias, const int32_t *bias_zp, const int32_t *mult,
                      const int32_t *shift, int32_t cout, int32_t k, int32_t out_zp, int32_t act_min,
                      int32_t act_max, int8_t *out)
{
    const int32_t pad = (k - 1) / 2, kc = k * cin;
    int32_t t, o;
    for (t = 0; t < len; ++t) {
        const int32_t s0 = t - pad;
        const int32_t first = s0 < 0 ? -s0 : 0, last = s0 + k > len ? len - s0 : k;  /* taps inside */
        for (o = 0; o < cout; o += BLOCK) {
            const int8_t *wb = w + o * kc;
            int32_t acc[BLOCK];
            if (first == 0 && last == k) {
                memcpy(acc, bias_zp + o, sizeof acc);
                dot_block(acc, in + s0 * cin, 0, wb, kc);
            } else {
                memcpy(acc, bias + o, sizeof acc);
                dot_block(acc, in + (s0 + first) * cin, in_zp, wb + first * cin * BLOCK, (last - first) * cin);
            }
            store_block(acc, mult + o, shift + o, cout - o < BLOCK ? cout - o : BLOCK, out_zp, act_min,
                        act_max, out + t * cout + o);
        }
    }
}

/* Max pooling, window 2, stride 2, channels-last. */
static void maxpool2_s8(const int8_t *in, int32_t len, int32_t ch, int8_t *out)
{
    int32_t t, c;
    for (t = 0; t < len / 2; ++t) {
        for (c = 0; c < ch; ++c) {
            const int8_t a = in[2 * t * ch + c], b = in[(2 * t + 1) * ch + c];
            out[t * ch + c] = a > b ? a : b;
        }
    }
}

/* Fully connected; weights (n_out / BLOCK, n_in, BLOCK); bias_zp = bias - in_zp * sum(w). */
static void fc_s8(const int8_t *in, int32_t n_in, const int8_t *w, const int32_t *bias_zp,
                  const int32_t *mult, const int32_t *shift, int32_t n_out, int32_t out_zp,
                  int32_t act_min, int32_t act_max, int8_t *out)
{
    int32_t o;
    for (o = 0; o < n_out; o += BLOCK) {
        int32_t acc[BLOCK];
        memcpy(acc, bias_zp + o, sizeof acc);
        dot_block(acc, in, 0, w + o * n_in, n_in);
        store_block(acc, mult + o, shift + o, n_out - o < BLOCK ? n_out - o : BLOCK, out_zp, act_min, act_max,
                    out + o);
    }
}
