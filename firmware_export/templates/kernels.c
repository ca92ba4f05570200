/* int8 kernels: TFLite's reference arithmetic (MultiplyByQuantizedMultiplier), C99, no float.
 *
 * Every layer computes BLOCK output channels at a time. Weights are stored as (channel block,
 * input pair, BLOCK, 2): the weights of one output channel for inputs 2i and 2i + 1 sit side by
 * side, so an input pair is loaded once and multiply-added into BLOCK accumulators, which a scalar
 * core keeps in registers and an AVX2 host updates 8 at a time with one pmaddwd. Layer widths are
 * zero-padded to a multiple of BLOCK and input counts to an even number; the padding is computed
 * and never stored.
 *
 * The kernels read x[n] after an odd number n of inputs (its weight is zero): the generator
 * leaves a byte after every such buffer.
 *
 * A convolution's input buffer holds (k - 1) / 2 rows before its data and k / 2 rows after it
 * that are set to the input zero point, so every output reads one contiguous window, and
 * sum((x - zp) * w) = sum(x * w) - zp * sum(w) holds at the edges too: the second term is folded
 * into the bias at generation time (bias_zp). */

#if defined(__AVX2__) && BLOCK % 8 == 0
#define KERNELS_AVX2 1      /* x86-64 with AVX2: the block kernel below uses pmaddwd */
#include <immintrin.h>
#else
#define KERNELS_AVX2 0      /* every other core: portable C99 */
#endif

#if !KERNELS_AVX2

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

typedef int8_t input_t;     /* a layer's input, read in place */

static const input_t *layer_input(const int8_t *in, int32_t n)
{
    (void)n;
    return in;
}

/* acc[b] += sum_j x[j] * w[j][b] for j < n, an input pair at a time; two separate multiply-adds
 * per channel keep each accumulator's chain in one register. */
static void dot_block(int32_t acc[BLOCK], const input_t *x, const int8_t *w, int32_t n)
{
    int32_t a[BLOCK], j, b;
    memcpy(a, acc, sizeof a);
    for (j = 0; j < n; j += 2, w += 2 * BLOCK) {
        const int32_t x0 = x[j], x1 = x[j + 1];
#pragma GCC unroll 32
        for (b = 0; b < BLOCK; ++b) {
            a[b] += x0 * w[2 * b];
            a[b] += x1 * w[2 * b + 1];
        }
    }
    memcpy(acc, a, sizeof a);
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

/* One block of output channels: out[b] = requantized(bias_zp[b] + sum_j x[j] * w[j][b]) for the
 * first `count` channels b. */
static void block_s8(const input_t *x, const int8_t *w, int32_t n, const int32_t *bias_zp, const int32_t *mult,
                     const int32_t *shift, int32_t count, int32_t out_zp, int32_t act_min, int32_t act_max,
                     int8_t *out)
{
    int32_t acc[BLOCK];
    memcpy(acc, bias_zp, sizeof acc);
    dot_block(acc, x, w, n);
    store_block(acc, mult, shift, count, out_zp, act_min, act_max, out);
}

#else /* KERNELS_AVX2 */

/* requantize() on 8 lanes: the same integer steps, so the same results. */
static __m256i requantize8(__m256i acc, __m256i mult, __m256i shift)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    const __m256i round = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    __m256i even, odd, high, threshold;
#if LEFT_SHIFT
    const __m256i left = _mm256_max_epi32(shift, zero);
    const __m256i limit = _mm256_srav_epi32(_mm256_set1_epi32(INT32_MAX), left);
    const __m256i below = _mm256_cmpgt_epi32(_mm256_sub_epi32(_mm256_sub_epi32(zero, limit), one), acc);
    __m256i scaled = _mm256_sllv_epi32(acc, left);
    scaled = _mm256_blendv_epi8(scaled, _mm256_set1_epi32(INT32_MAX), _mm256_cmpgt_epi32(acc, limit));
    scaled = _mm256_blendv_epi8(scaled, _mm256_set1_epi32(INT32_MIN), below);
#else
    const __m256i scaled = acc;
#endif
    /* (scaled * mult + 2^30) >> 31: 64-bit products of the even lanes, then of the odd ones, whose
     * 32 result bits are moved to the upper half of their 64-bit lane by << 1 */
    even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(scaled, mult), round), 31);
    odd = _mm256_mul_epi32(_mm256_srli_epi64(scaled, 32), _mm256_srli_epi64(mult, 32));
    odd = _mm256_slli_epi64(_mm256_add_epi64(odd, round), 1);
    high = _mm256_blend_epi32(even, odd, 0xAA);
    /* rounding divide by 2^right; a compare is -1 where true */
    threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(zero, high));
    return _mm256_sub_epi32(_mm256_srav_epi32(high, right),
                            _mm256_cmpgt_epi32(_mm256_and_si256(high, mask), threshold));
}

/* A layer's input, widened once to int16 (WIDE_INPUT_MAX: the longest, from the generator), so
 * that one 32-bit load is an input pair in the form pmaddwd takes. */
typedef int16_t input_t;
static int16_t wide_input[WIDE_INPUT_MAX];

static const input_t *layer_input(const int8_t *in, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        wide_input[i] = in[i];
    }
    return wide_input;
}

/* One block of output channels: out[b] = requantized(bias_zp[b] + sum_j x[j] * w[j][b]) for the
 * first `count` channels b, j < n. Groups of 8 channels that are all padding are skipped. */
static void block_s8(const input_t *x, const int8_t *w, int32_t n, const int32_t *bias_zp, const int32_t *mult,
                     const int32_t *shift, int32_t count, int32_t out_zp, int32_t act_min, int32_t act_max,
                     int8_t *out)
{
    __m256i acc[BLOCK / 8];
    int32_t i, j;
    for (i = 0; i < BLOCK / 8; ++i) {
        acc[i] = _mm256_loadu_si256((const __m256i *)(const void *)(bias_zp + 8 * i));
    }
#pragma GCC unroll 1
    for (j = 0; j < n; j += 2, w += 2 * BLOCK) {
        /* x[j], x[j + 1] as the two int16 halves of every int32 lane; pmaddwd then gives
         * x[j] * w[j][b] + x[j + 1] * w[j + 1][b] for 8 channels b, exactly (|product| <= 2^14) */
        int32_t xx;
        __m256i pair;
        memcpy(&xx, x + j, sizeof xx);
        pair = _mm256_set1_epi32(xx);
#pragma GCC unroll 4
        for (i = 0; i < BLOCK / 8; ++i) {
            if (8 * i < count) {
                const __m128i w8 = _mm_loadu_si128((const __m128i *)(const void *)(w + 16 * i));
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pair, _mm256_cvtepi8_epi16(w8)));
            }
        }
    }
#pragma GCC unroll 4
    for (i = 0; i < BLOCK / 8; ++i) {
        if (8 * i < count) {
            const __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8 * i));
            const __m256i s = _mm256_loadu_si256((const __m256i *)(const void *)(shift + 8 * i));
            __m256i y = _mm256_add_epi32(requantize8(acc[i], m, s), _mm256_set1_epi32(out_zp));
            __m128i y16;
            y = _mm256_min_epi32(_mm256_max_epi32(y, _mm256_set1_epi32(act_min)), _mm256_set1_epi32(act_max));
            y16 = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
            y16 = _mm_packs_epi16(y16, y16);        /* 8 int8 in the low 8 bytes, in order */
            if (count - 8 * i >= 8) {
                _mm_storel_epi64((__m128i *)(void *)(out + 8 * i), y16);
            } else {
                int8_t y8[16];
                _mm_storeu_si128((__m128i *)(void *)y8, y16);
                memcpy(out + 8 * i, y8, (size_t)(count - 8 * i));
            }
        }
    }
}

#endif /* KERNELS_AVX2 */

/* Channels-last 1-D convolution, stride 1, SAME padding. `in` is the window of output 0: the
 * (k - 1) / 2 zero-point rows before the len input rows; weights (cout / BLOCK, k * cin inputs). */
static void conv1d_s8(const int8_t *in, int32_t len, int32_t cin, const int8_t *w, const int32_t *bias_zp,
                      const int32_t *mult, const int32_t *shift, int32_t cout, int32_t k, int32_t out_zp,
                      int32_t act_min, int32_t act_max, int8_t *out)
{
    const int32_t n = k * cin, n_even = n + (n & 1);
    const input_t *x = layer_input(in, (len - 1) * cin + n_even);
    int32_t t, o;
    for (t = 0; t < len; ++t) {
        for (o = 0; o < cout; o += BLOCK) {
            block_s8(x + t * cin, w + o * n_even, n, bias_zp + o, mult + o, shift + o,
                     cout - o < BLOCK ? cout - o : BLOCK, out_zp, act_min, act_max, out + t * cout + o);
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

/* Fully connected; weights (n_out / BLOCK, n_in inputs); bias_zp = bias - in_zp * sum(w). */
static void fc_s8(const int8_t *in, int32_t n_in, const int8_t *w, const int32_t *bias_zp,
                  const int32_t *mult, const int32_t *shift, int32_t n_out, int32_t out_zp,
                  int32_t act_min, int32_t act_max, int8_t *out)
{
    const int32_t n_even = n_in + (n_in & 1);
    const input_t *x = layer_input(in, n_even);
    int32_t o;
    for (o = 0; o < n_out; o += BLOCK) {
        block_s8(x, w + o * n_even, n_in, bias_zp + o, mult + o, shift + o, n_out - o < BLOCK ? n_out - o : BLOCK,
                 out_zp, act_min, act_max, out + o);
    }
}

/* The class of a beat, from the output layer's int32 accumulators. The int8 logits round that
 * layer to one step of its scale, so two classes can tie where the float model had a clear
 * winner; here every class gets score = round(acc * mult * 2^(shift - 31 + bits)), exactly, in 64
 * bits: the same scale for all classes (the per-channel weight scales are in mult), 2^bits times
 * finer than the logits, not clamped. Ties go to the lower class index. A handful of multiply-adds
 * per class: the accumulators are computed again rather than kept by the block kernels. */
static int decide_fc(const int8_t *in, int32_t n_in, const int8_t *w, const int32_t *bias_zp,
                     const int32_t *mult, const int32_t *shift, int32_t n_out, int32_t bits)
{
    const int32_t n_even = n_in + (n_in & 1);
    int32_t o, j;
    int best = 0;
    int64_t best_score = 0;
    for (o = 0; o < n_out; ++o) {
        const int8_t *wo = w + (o / BLOCK) * n_even * BLOCK + (o % BLOCK) * 2;
        const int32_t right = 31 - shift[o] - bits;     /* >= 1: the generator chooses bits so */
        int32_t acc = bias_zp[o];
        int64_t score;
        for (j = 0; j < n_in; ++j) {
            acc += (int32_t)in[j] * wo[(j >> 1) * 2 * BLOCK + (j & 1)];
        }
        score = ((int64_t)acc * mult[o] + ((int64_t)1 << (right - 1))) >> right;
        if (o == 0 || score > best_score) {
            best = (int)o;
            best_score = score;
        }
    }
    return best;
}
