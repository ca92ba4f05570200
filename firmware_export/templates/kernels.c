/* int8 kernels: TFLite's reference arithmetic (MultiplyByQuantizedMultiplier), C99, no float.
 *
 * Every layer computes BLOCK output channels (BLOCK even) at one or two output positions at a time:
 * a convolution's neighbouring positions share every weight they load (and, where a max pool of 2
 * follows, are its pair). Weights are stored as (channel block, input pair, channel pair, 4 bytes):
 * for channels c, c + 1 and inputs j, j + 1 the bytes are w[c][j], w[c+1][j], w[c][j+1],
 * w[c+1][j+1], in the order the Arm DSP instruction SXTB16 splits into each channel's pair; the
 * DSP path itself reads an int16 copy laid out for SMLAD (weight_t below). Layer widths are
 * zero-padded to a multiple of BLOCK: the padding channels are computed and never stored.
 *
 * One portable C99 path, and target paths chosen from the compiler's ISA macros, each bit-exact
 * with it (tests run each under qemu against the numpy reference):
 *   KERNELS_VNNI  x86-64 with AVX-512 VNNI and VBMI (the host, where it has them): vpdpbusd on 8
 *                 channels, 4 inputs at once, on the inputs read as unsigned bytes x + 128
 *   KERNELS_AVX2  x86-64 with AVX2 (the host): pmaddwd on 8 channels at once
 *   KERNELS_NEON  AArch64 (Raspberry Pi 3/4/5): smull/smlal on int8, 8 multiply-adds per instruction
 *   KERNELS_DSP   32-bit Arm with the DSP extension (Cortex-M4/M7/M33/M55, ...): SMLAD, 2 per instruction
 *   portable      everything else (RISC-V, Xtensa, Cortex-M0, ...)
 *
 * Each layer's input count n is padded with zero weights to a multiple of GROUP (8): the NEON
 * kernels read whole groups, the others stop at n (or n + 1 when n is odd). The generator leaves the
 * bytes up to the padded count after every layer input, so no read leaves its buffer.
 *
 * A convolution's input buffer holds (k - 1) / 2 rows before its data and k / 2 rows after it
 * that are set to the input zero point, so every output reads one contiguous window, and
 * sum((x - zp) * w) = sum(x * w) - zp * sum(w) holds at the edges too: the second term is folded
 * into the bias at generation time (bias_zp). */

#define POSITIONS 2         /* a convolution's output positions per block call (sharing its weight loads) */

#if defined(__cplusplus)
#define restrict __restrict /* C99's restrict, where the library is compiled as C++ (Arduino) */
#endif

#if defined(__GNUC__)
#define BLOCK_INLINE static inline __attribute__((always_inline))   /* one copy per layer loop */
#else
#define BLOCK_INLINE static
#endif

#if defined(__AVX2__) && BLOCK % 8 == 0
#define KERNELS_AVX2 1      /* the requantization and the stores; the multiply-adds below are VNNI's or AVX2's */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512VBMI__)
#define KERNELS_VNNI 1
#endif
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON) && BLOCK % 8 == 0 && WEIGHTS_ABOVE_MIN
#define KERNELS_NEON 1      /* two int8 products summed in int16 need no weight of -128 */
#include <arm_neon.h>
#elif defined(__ARM_FEATURE_SIMD32) && defined(__ARM_FEATURE_DSP)
#define KERNELS_DSP 1
#include <arm_acle.h>
#endif

#if !defined(KERNELS_AVX2) && !defined(KERNELS_NEON)     /* the scalar requantization */

/* TFLite's MultiplyByQuantizedMultiplier for a multiplier in [0, 2^31), as the int8 kernels use it:
 * acc * multiplier * 2^(shift - 31), the left shift saturating to int32, then two roundings.
 * SaturatingRoundingDoublingHighMul rounds half away from zero; for both signs that equals
 * (x * m + 2^30) >> 31 (floor), and its one saturating case (both operands INT32_MIN) cannot
 * occur with m >= 0; the low 32 bits of that shift are the same whether it is arithmetic or
 * logical, and the logical one vectorizes. RoundingDivideByPOT then rounds half away from zero
 * again. Right shifts of negative int32 values are arithmetic and conversions to int32 wrap, as
 * on every compiler TFLite itself supports. Branch-free, so that a loop over a block vectorizes. */
#if FAST_REQUANT && defined(KERNELS_DSP)
/* requantize() + out_zp where FAST_REQUANT holds (below), in Arm's instructions: (x * m + 2^30) >> 31 is
 * SMMULR(2x, m), the high word of 2x m rounded, one instruction; and the zero point joins the last
 * rounding step, (((a >> r) + 1) >> 1) + zp = ((a >> r) + 1 + 2 zp) >> 1 for every integer. The
 * generator stores this path's shifts inverted, ~shift = right shift - 1 (STORED_SHIFT gives the
 * shift back), so no output pays an MVN for it. */
#define SHIFT_INVERTED 1
static int32_t requantize_zp(int32_t acc, int32_t multiplier, int32_t inverted_shift, int32_t out_zp)
{
    int32_t high;
    __asm__("smmulr %0, %1, %2" : "=r"(high) : "r"(acc * 2), "r"(multiplier));
    return (((high + (high >> 31)) >> inverted_shift) + (1 + 2 * out_zp)) >> 1;
}
#elif FAST_REQUANT
/* The same function where the generator has checked that no multiplier needs a left shift, every
 * right shift is >= 1 and every accumulator is below 2^30 in magnitude: (x * m + 2^30) >> 31 is
 * then the high word of (2x) * m, rounded (a 32 x 32 -> 64 multiply and an add; SMMULR-like), and
 * the rounding divide, (a + 2^(right - 1)) >> right with a = high - 1 for a negative high, is
 * ((a >> (right - 1)) + 1) >> 1, the same floor for every integer a; right - 1 = ~shift. */
static int32_t requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int64_t product = (int64_t)(acc * 2) * multiplier;
    const int32_t high = (int32_t)(product >> 32) + (int32_t)((uint32_t)product >> 31);
    return (((high + (high >> 31)) >> ~shift) + 1) >> 1;
}
#else
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
#endif
#if !(FAST_REQUANT && defined(KERNELS_DSP))
#define SHIFT_INVERTED 0
static int32_t requantize_zp(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp)
{
    return requantize(acc, multiplier, shift) + out_zp;
}
#endif

/* One accumulator to its int8 output, clamped to the activation range. */
static int8_t requant_s8(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max)
{
#if defined(KERNELS_DSP)
    /* SSAT clamps to the int8 range in one instruction; the activation range is narrower only for a
     * ReLU whose zero point is above -128 (act_min), or a ReLU6 (act_max): constants where inlined */
    int32_t v = __ssat(requantize_zp(acc, mult, shift, out_zp), 8);
    if (act_max < 127) {
        v = v > act_max ? act_max : v;
    }
    if (act_min > -128) {
        v = v < act_min ? act_min : v;
    }
    return (int8_t)v;
#else
    const int32_t v = requantize_zp(acc, mult, shift, out_zp);
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
#endif
}

#else
#define SHIFT_INVERTED 0
#endif
#define STORED_SHIFT(s) (SHIFT_INVERTED ? ~(s) : (s))   /* a layer's shift as its array holds it, back */

/* How far a block kernel reads past a position's first input: its n inputs rounded up to the
 * pairs (or, for VNNI and DSP, the quads) it multiplies at once. Never past n rounded up to GROUP, up to
 * which the generator leaves bytes after every layer input and pads the weights with zeros. */
#if defined(KERNELS_VNNI) || defined(KERNELS_DSP)
#define READ_EXTENT(n) (((n) + 3) & ~3)
#else
#define READ_EXTENT(n) ((n) + ((n) & 1))
#endif

#if defined(KERNELS_VNNI)
/* A layer's input as unsigned bytes x + 128, which vpdpbusd multiplies with the signed weights:
 * sum((x + 128) * w) = sum(x * w) + 128 * sum(w), and the second term is taken off the bias once
 * per layer and block of channels (vnni_bias). */
typedef uint8_t input_t;
static uint8_t wide_input[WIDE_INPUT_MAX];

static const input_t *layer_input(const int8_t *in, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        wide_input[i] = (uint8_t)((uint8_t)in[i] ^ 0x80u);
    }
    return wide_input;
}
#elif defined(KERNELS_AVX2) || defined(KERNELS_DSP)
/* A layer's input, widened once to int16 (WIDE_INPUT_MAX: the longest, from the generator), so
 * that one 32-bit load is an input pair in the form pmaddwd and SMLAD take; word-aligned, so that
 * a position's first pair (an even position of a convolution) is one aligned word. */
typedef int16_t input_t;
static union {
    int32_t align;
    int16_t v[WIDE_INPUT_MAX];
} wide;

static const input_t *layer_input(const int8_t *in, int32_t n)
{
    int32_t i = 0;
#if defined(KERNELS_DSP)
    const int32_t n4 = n & ~3;
    for (; i < n4; i += 4) {        /* bytes 0-3: SXTB16 gives (0, 2) and (1, 3), packed into (0, 1), (2, 3) */
        uint32_t four, lo, hi;
        int32_t even, odd;
        memcpy(&four, in + i, 4);
        even = __sxtb16((int32_t)four);
        odd = __sxtb16((int32_t)((four >> 8) | (four << 24)));
        lo = ((uint32_t)even & 0xFFFFu) | ((uint32_t)odd << 16);
        hi = ((uint32_t)even >> 16) | ((uint32_t)odd & 0xFFFF0000u);
        memcpy(&wide.v[i], &lo, 4);
        memcpy(&wide.v[i + 2], &hi, 4);
    }
    i = n4;
#endif
    for (; i < n; ++i) {
        wide.v[i] = in[i];
    }
    return wide.v;
}
#else
typedef int8_t input_t;     /* a layer's input, read in place */

static const input_t *layer_input(const int8_t *in, int32_t n)
{
    (void)n;
    return in;
}
#endif

/* The weights as the kernels read them (the generator writes both forms, see cmodel.py): int8 in
 * the layout above, or, for the DSP path, int16 per channel pair and input quad, (c j .. j + 3,
 * c + 1 j .. j + 3), so that SMLAD takes them without unpacking: twice the bytes, fewer instructions. */
#if defined(KERNELS_DSP)
typedef int16_t weight_t;
#else
typedef int8_t weight_t;
#endif

/* Every path defines
 *   block_s8(x, stride, npos, pool, w, n, bias_zp, mult, shift, count, out_zp, act_min, act_max, out, out_stride):
 * for positions p < npos (1 or POSITIONS = 2) and the first `count` channels b of a block,
 *   acc[p][b] = bias_zp[b] + sum_{j < n} x[p * stride + j] * w(b, j),
 *   out[p * out_stride + b] = requantized(acc[p][b]);
 * or, where pool is 1 (npos 2: a convolution followed by a max pool of 2), one output per channel,
 *   out[b] = requantized(max(acc[0][b], acc[1][b])),
 * which is the max of the two requantized outputs, exactly: the requantization is monotonic. */

#if defined(KERNELS_DSP)

/* Two 32-bit words (four int16) at *p, p advanced past them: one LDRD with write-back where *p is
 * known to be word-aligned (`aligned`, a constant where it is inlined; GCC neither pairs the two
 * loads nor folds the increment by itself). The memory operand tells the compiler what it reads. */
typedef struct {
    int32_t w[2];
} words2_t;

BLOCK_INLINE void next_words(const int16_t **p, int aligned, int32_t w[2])
{
#if defined(__GNUC__)
    if (aligned) {
        const int16_t *q = *p;
        __asm__("ldrd %0, %1, [%2], #8" : "=r"(w[0]), "=r"(w[1]), "+r"(q) : "m"(*(const words2_t *)(const void *)q));
        *p = q;
        return;
    }
#else
    (void)aligned;
#endif
    memcpy(w, *p, 2 * sizeof w[0]);
    *p += 4;
}

/* Channels 2q, 2q + 1 at one input quad of position 0 (acc[0], acc[1]) and, with `two`, of position 1
 * (acc[2], acc[3]): per quad one LDRD of each channel's 4 weights and of each position's 4 inputs, 4 or
 * 8 SMLAD. `two` is a constant where this is inlined, so its tests fold away. 4 accumulators, 6 words
 * and 4 pointers (the two positions, the weights, the loop's end) are the 14 registers a Cortex-M has.
 * x1 is word-aligned where the input row (the position stride) is an even number of values. */
BLOCK_INLINE void dsp_quad(const input_t **x, const input_t **x1, int aligned1, const int16_t **wq, int two,
                           int32_t acc[4])
{
    int32_t a[2], b[2] = {0, 0}, w[2];
    next_words(x, 1, a);
    if (two) {
        next_words(x1, aligned1, b);
    }
    next_words(wq, 1, w);
    acc[0] = __smlad(w[1], a[1], __smlad(w[0], a[0], acc[0]));
    if (two) {
        acc[2] = __smlad(w[1], b[1], __smlad(w[0], b[0], acc[2]));
    }
    next_words(wq, 1, w);
    acc[1] = __smlad(w[1], a[1], __smlad(w[0], a[0], acc[1]));
    if (two) {
        acc[3] = __smlad(w[1], b[1], __smlad(w[0], b[0], acc[3]));
    }
}

/* All of a channel pair's input quads at one or two positions: the odd one and a pair of them first,
 * then four per loop pass (n and two are constants where this is inlined, so the tests fold away):
 * the loop's compare and branch are paid once per 64 MACs. */
BLOCK_INLINE void dsp_quads(const input_t *x, const input_t *x1, int aligned1, const int16_t *wq, int32_t n,
                            int two, int32_t acc[4])
{
    const input_t *end;
    if (((n + 3) >> 2) & 1) {
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
    }
    if (((n + 3) >> 2) & 2) {
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
    }
    end = x + ((n + 3) & ~15);
    while (x < end) {
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
        dsp_quad(&x, &x1, aligned1, &wq, two, acc);
    }
}

BLOCK_INLINE void block_s8(const input_t *x, int32_t stride, int32_t npos, int32_t pool, const weight_t *restrict w,
                           int32_t n, const int32_t *restrict bias_zp, const int32_t *restrict mult,
                           const int32_t *restrict shift, int32_t count, int32_t out_zp, int32_t act_min,
                           int32_t act_max, int8_t *restrict out, int32_t out_stride)
{
    const int32_t n_pad = (n + GROUP - 1) / GROUP * GROUP;
    int32_t q;
    for (q = 0; 2 * q < count; ++q) {
        int32_t acc[4];                                 /* channel 2q, 2q + 1 at position 0, then 1 */
        acc[0] = acc[2] = bias_zp[2 * q];
        acc[1] = acc[3] = bias_zp[2 * q + 1];
        if (npos > 1) {
            dsp_quads(x, x + stride, (stride & 1) == 0, w + 2 * q * n_pad, n, 1, acc);
        } else {                                        /* a dense layer, or a convolution's last odd position */
            dsp_quads(x, x, 1, w + 2 * q * n_pad, n, 0, acc);
        }
        if (pool) {
            acc[0] = acc[0] > acc[2] ? acc[0] : acc[2];
            acc[1] = acc[1] > acc[3] ? acc[1] : acc[3];
        }
        /* straight to int8: each channel's multiplier and shift loaded once for both positions */
        out[2 * q] = requant_s8(acc[0], mult[2 * q], shift[2 * q], out_zp, act_min, act_max);
        if (npos > 1 && !pool) {
            out[out_stride + 2 * q] = requant_s8(acc[2], mult[2 * q], shift[2 * q], out_zp, act_min, act_max);
        }
        if (2 * q + 1 < count) {
            out[2 * q + 1] = requant_s8(acc[1], mult[2 * q + 1], shift[2 * q + 1], out_zp, act_min, act_max);
            if (npos > 1 && !pool) {
                out[out_stride + 2 * q + 1] = requant_s8(acc[3], mult[2 * q + 1], shift[2 * q + 1], out_zp,
                                                         act_min, act_max);
            }
        }
    }
}

#elif defined(KERNELS_NEON)

/* requantize() on 4 lanes with TFLite's NEON steps: vqrdmulh is (x * m + 2^30) >> 31 with m >= 0,
 * and the rounding right shift with a -1 fixup for negative values rounds half away from zero. */
static int32x4_t requantize4(int32x4_t acc, int32x4_t mult, int32x4_t shift)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t right_neg = vminq_s32(shift, zero);        /* -right */
#if LEFT_SHIFT
    const int32x4_t scaled = vqshlq_s32(acc, vmaxq_s32(shift, zero));
#else
    const int32x4_t scaled = acc;
#endif
    const int32x4_t high = vqrdmulhq_s32(scaled, mult);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, right_neg), 31);
    return vrshlq_s32(vqaddq_s32(high, fixup), right_neg);
}

/* Channels 4i .. 4i + 3 of one position: acc holds (c0e c1e c0o c1o), (c2e c3e c2o c3o), the sums of
 * each channel's even and odd inputs, added here with the bias. */
static inline int32x4_t neon_sum(const int32x4_t *acc, int32_t i, int32x4_t bias)
{
    const int64x2_t a = vreinterpretq_s64_s32(acc[2 * i]), b = vreinterpretq_s64_s32(acc[2 * i + 1]);
    return vaddq_s32(vaddq_s32(vreinterpretq_s32_s64(vzip1q_s64(a, b)), vreinterpretq_s32_s64(vzip2q_s64(a, b))),
                     bias);
}

/* The block kernel for np (1 or 2, a constant where it is inlined) positions. */
BLOCK_INLINE void neon_block(const input_t *x, int32_t stride, const int32_t np, const int32_t pool,
                             const weight_t *restrict w, int32_t n,
                             const int32_t *restrict bias_zp, const int32_t *restrict mult,
                             const int32_t *restrict shift, int32_t count, int32_t out_zp, int32_t act_min,
                             int32_t act_max, int8_t *restrict out, int32_t out_stride)
{
    /* acc[p][k]: channels 2k, 2k + 1 as (even inputs of 2k, of 2k + 1, odd inputs of 2k, of 2k + 1) */
    int32x4_t acc[2][BLOCK / 2];
    const input_t *xs[2];
    int32_t i, j, p;
    xs[0] = x;
    xs[1] = x + stride;
    for (p = 0; p < np; ++p) {
        for (i = 0; i < BLOCK / 2; ++i) {
            acc[p][i] = vdupq_n_s32(0);
        }
    }
    /* four input pairs at a time, as two steps of two: the two products per lane of a step are
     * summed in int16, exactly (|w| <= 127, so |sum| <= 2 * 127 * 128 < 2^15), then widened into
     * the int32 lanes */
    for (j = 0; j < n; j += 8, w += 8 * BLOCK) {     /* up to n rounded up to GROUP: zero weights */
#pragma GCC unroll 2
        for (p = 0; p < np; ++p) {
            uint64_t eight;                                 /* x[j] .. x[j + 7] */
            int32x4_t quads;                                /* x[j] x[j] x[j+1] x[j+1] .. x[j+7] x[j+7] */
            int8x16_t v;
            memcpy(&eight, xs[p] + j, 8);
            v = vreinterpretq_s8_u64(vdupq_n_u64(eight));
            quads = vreinterpretq_s32_s8(vzip1q_s8(v, v));
            const int8x16_t x0 = vreinterpretq_s8_s32(vdupq_laneq_s32(quads, 0));
            const int8x16_t x1 = vreinterpretq_s8_s32(vdupq_laneq_s32(quads, 1));
            const int8x16_t x2 = vreinterpretq_s8_s32(vdupq_laneq_s32(quads, 2));
            const int8x16_t x3 = vreinterpretq_s8_s32(vdupq_laneq_s32(quads, 3));
#pragma GCC unroll 4
            for (i = 0; i < BLOCK / 8; ++i) {
                const int8_t *wi = w + 16 * i;
                const int8x16_t w0 = vld1q_s8(wi), w1 = vld1q_s8(wi + 2 * BLOCK);
                const int8x16_t w2 = vld1q_s8(wi + 4 * BLOCK), w3 = vld1q_s8(wi + 6 * BLOCK);
                const int16x8_t lo01 = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), vget_low_s8(w1),
                                                vget_low_s8(x1));
                const int16x8_t hi01 = vmlal_high_s8(vmull_high_s8(w0, x0), w1, x1);
                const int16x8_t lo23 = vmlal_s8(vmull_s8(vget_low_s8(w2), vget_low_s8(x2)), vget_low_s8(w3),
                                                vget_low_s8(x3));
                const int16x8_t hi23 = vmlal_high_s8(vmull_high_s8(w2, x2), w3, x3);
                acc[p][4 * i] = vaddw_s16(vaddw_s16(acc[p][4 * i], vget_low_s16(lo01)), vget_low_s16(lo23));
                acc[p][4 * i + 1] = vaddw_high_s16(vaddw_high_s16(acc[p][4 * i + 1], lo01), lo23);
                acc[p][4 * i + 2] = vaddw_s16(vaddw_s16(acc[p][4 * i + 2], vget_low_s16(hi01)), vget_low_s16(hi23));
                acc[p][4 * i + 3] = vaddw_high_s16(vaddw_high_s16(acc[p][4 * i + 3], hi01), hi23);
            }
        }
    }
    for (p = 0; p < (pool ? 1 : np); ++p) {
        int8_t y8[BLOCK];
        int8_t *dst = count == BLOCK ? out + p * out_stride : y8;     /* a full block: stored in place */
#pragma GCC unroll 4
        for (i = 0; i < BLOCK / 4; ++i) {
            const int32x4_t bias = vld1q_s32(bias_zp + 4 * i);
            const int32x4_t s = pool ? vmaxq_s32(neon_sum(acc[0], i, bias), neon_sum(acc[1], i, bias))
                                     : neon_sum(acc[p], i, bias);
            int32x4_t t = vaddq_s32(requantize4(s, vld1q_s32(mult + 4 * i), vld1q_s32(shift + 4 * i)),
                                    vdupq_n_s32(out_zp));
            int16x4_t t16;
            t = vminq_s32(vmaxq_s32(t, vdupq_n_s32(act_min)), vdupq_n_s32(act_max));
            t16 = vmovn_s32(t);
            {
                const int32_t four = vget_lane_s32(vreinterpret_s32_s8(vmovn_s16(vcombine_s16(t16, t16))), 0);
                memcpy(dst + 4 * i, &four, 4);
            }
        }
        if (count < BLOCK) {
            memcpy(out + p * out_stride, y8, (size_t)count);
        }
    }
}

BLOCK_INLINE void block_s8(const input_t *x, int32_t stride, int32_t npos, int32_t pool, const weight_t *restrict w,
                           int32_t n, const int32_t *restrict bias_zp, const int32_t *restrict mult,
                           const int32_t *restrict shift, int32_t count, int32_t out_zp, int32_t act_min,
                           int32_t act_max, int8_t *restrict out, int32_t out_stride)
{
    if (pool) {
        neon_block(x, stride, 2, 1, w, n, bias_zp, mult, shift, count, out_zp, act_min, act_max, out, out_stride);
    } else if (npos > 1) {
        neon_block(x, stride, 2, 0, w, n, bias_zp, mult, shift, count, out_zp, act_min, act_max, out, out_stride);
    } else {            /* a dense layer, or a convolution's last odd position */
        neon_block(x, stride, 1, 0, w, n, bias_zp, mult, shift, count, out_zp, act_min, act_max, out, out_stride);
    }
}

#elif defined(KERNELS_AVX2)

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

/* The accumulators of npos positions (acc[p][i]: channels 8i .. 8i + 7), or of their max where pool
 * is 1, requantized to int8 and stored, the first `count` channels. */
BLOCK_INLINE void store_block(__m256i acc[2][BLOCK / 8], int32_t npos, int32_t pool, const int32_t *restrict mult,
                              const int32_t *restrict shift, int32_t count, int32_t out_zp, int32_t act_min,
                              int32_t act_max, int8_t *restrict out, int32_t out_stride)
{
    int32_t i, p;
    if (pool) {
        for (i = 0; i < BLOCK / 8; ++i) {
            acc[0][i] = _mm256_max_epi32(acc[0][i], acc[1][i]);
        }
        npos = 1;
    }
    for (p = 0; p < npos; ++p) {
#pragma GCC unroll 4
        for (i = 0; i < BLOCK / 8; ++i) {
            if (8 * i < count) {
                const __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(mult + 8 * i));
                const __m256i s = _mm256_loadu_si256((const __m256i *)(const void *)(shift + 8 * i));
                __m256i y = _mm256_add_epi32(requantize8(acc[p][i], m, s), _mm256_set1_epi32(out_zp));
                __m128i y16;
                int8_t *o = out + p * out_stride + 8 * i;
                y = _mm256_min_epi32(_mm256_max_epi32(y, _mm256_set1_epi32(act_min)), _mm256_set1_epi32(act_max));
                y16 = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
                y16 = _mm_packs_epi16(y16, y16);        /* 8 int8 in the low 8 bytes, in order */
                if (count - 8 * i >= 8) {
                    _mm_storel_epi64((__m128i *)(void *)o, y16);
                } else {
                    int8_t y8[16];
                    _mm_storeu_si128((__m128i *)(void *)y8, y16);
                    memcpy(o, y8, (size_t)(count - 8 * i));
                }
            }
        }
    }
}

#if defined(KERNELS_VNNI)

/* Channel c's inputs j .. j + 3 as one int32 lane (what vpdpbusd multiplies with 4 input bytes),
 * from 8 channels' input pairs (j, j + 1) in bytes 0-15 and (j + 2, j + 3) in bytes 16-31, each
 * pair in the SXTB16 order (c j, c+1 j, c j+1, c+1 j+1). */
static __m256i vnni_weights(const int8_t *w, int32_t i)
{
    const __m256i order = _mm256_setr_epi8(0, 2, 16, 18, 1, 3, 17, 19, 4, 6, 20, 22, 5, 7, 21, 23,
                                           8, 10, 24, 26, 9, 11, 25, 27, 12, 14, 28, 30, 13, 15, 29, 31);
    const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(w + 16 * i));
    const __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(w + 2 * BLOCK + 16 * i));
    return _mm256_permutexvar_epi8(order, _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}

/* bias_zp - 128 * sum(w) for one block's channels: the bias for inputs read as x + 128. */
static void vnni_bias(const int8_t *w, int32_t n, const int32_t *bias_zp, int32_t *out)
{
    const __m256i x128 = _mm256_set1_epi8((char)0x80);
    int32_t i, j;
    for (i = 0; i < BLOCK / 8; ++i) {
        __m256i sum = _mm256_setzero_si256();
        for (j = 0; j < n; j += 4) {
            sum = _mm256_dpbusd_epi32(sum, x128, vnni_weights(w + j * BLOCK, i));   /* pair j / 2 */
        }
        _mm256_storeu_si256((__m256i *)(void *)(out + 8 * i),
                            _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(bias_zp + 8 * i)),
                                             sum));
    }
}

/* x[j] .. x[j + 3] + 128 in every int32 lane (pa, pb: the two positions); vpdpbusd adds the 4
 * products of each lane's unsigned input bytes and signed weight bytes to it, exactly (no saturation). */
#define INPUT_STEP 4
BLOCK_INLINE void madd_block(__m256i acc[2][BLOCK / 8], __m256i pa, __m256i pb, const int8_t *w, int32_t count)
{
    int32_t i;
#pragma GCC unroll 4
    for (i = 0; i < BLOCK / 8; ++i) {
        if (8 * i < count) {
            const __m256i w8 = vnni_weights(w, i);
            acc[0][i] = _mm256_dpbusd_epi32(acc[0][i], pa, w8);
            acc[1][i] = _mm256_dpbusd_epi32(acc[1][i], pb, w8);
        }
    }
}

#else

/* x[j], x[j + 1] as the two int16 halves of every int32 lane; pmaddwd then gives
 * x[j] * w[b][j] + x[j + 1] * w[b][j + 1] for 8 channels b, exactly (|product| <= 2^14). The weight
 * bytes (c j, c+1 j, c j+1, c+1 j+1) are reordered to (c j, c j+1, c+1 j, c+1 j+1): one channel's
 * pair per int16 pair after widening. */
#define INPUT_STEP 2
BLOCK_INLINE void madd_block(__m256i acc[2][BLOCK / 8], __m256i pa, __m256i pb, const int8_t *w, int32_t count)
{
    const __m128i order = _mm_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
    int32_t i;
#pragma GCC unroll 4
    for (i = 0; i < BLOCK / 8; ++i) {
        if (8 * i < count) {
            const __m128i w8 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(w + 16 * i)), order);
            const __m256i w16 = _mm256_cvtepi8_epi16(w8);
            acc[0][i] = _mm256_add_epi32(acc[0][i], _mm256_madd_epi16(pa, w16));
            acc[1][i] = _mm256_add_epi32(acc[1][i], _mm256_madd_epi16(pb, w16));
        }
    }
}

#endif /* KERNELS_VNNI */

/* Both positions' INPUT_STEP inputs, broadcast to every lane, multiply-added with 8 channels at a time. */
BLOCK_INLINE void block_s8(const input_t *x, int32_t stride, int32_t npos, int32_t pool, const weight_t *restrict w,
                           int32_t n, const int32_t *restrict bias_zp, const int32_t *restrict mult,
                           const int32_t *restrict shift, int32_t count, int32_t out_zp, int32_t act_min,
                           int32_t act_max, int8_t *restrict out, int32_t out_stride)
{
    __m256i acc[2][BLOCK / 8];
    int32_t i, j;
    for (i = 0; i < BLOCK / 8; ++i) {
        acc[0][i] = acc[1][i] = _mm256_loadu_si256((const __m256i *)(const void *)(bias_zp + 8 * i));
    }
#pragma GCC unroll 1
    for (j = 0; j < n; j += INPUT_STEP, w += INPUT_STEP * BLOCK) {
        int32_t xa, xb;                                 /* the inputs' 4 bytes: 4 uint8 or 2 int16 */
        memcpy(&xa, x + j, sizeof xa);
        memcpy(&xb, x + (npos > 1 ? stride : 0) + j, sizeof xb);
        madd_block(acc, _mm256_set1_epi32(xa), _mm256_set1_epi32(xb), w, count);
    }
    store_block(acc, npos, pool, mult, shift, count, out_zp, act_min, act_max, out, out_stride);
}

#else /* portable */

/* Channels per pass: 4 (2 where BLOCK is not a multiple of 4). Three positions per pass on
 * rv32imc were measured and spill: 8 % more instructions than two. */
#define PCH (BLOCK % 4 == 0 ? 4 : 2)

/* The block kernel for np positions (a constant where it is inlined), npos <= np of them stored. */
BLOCK_INLINE void portable_block(const input_t *x, int32_t stride, const int32_t np, int32_t npos, int32_t pool,
                                 const weight_t *restrict w, int32_t n, const int32_t *restrict bias_zp,
                                 const int32_t *restrict mult, const int32_t *restrict shift, int32_t count,
                                 int32_t out_zp, int32_t act_min, int32_t act_max, int8_t *restrict out,
                                 int32_t out_stride)
{
    /* PCH channels at every position per pass: each weight byte loaded once for POSITIONS
     * multiply-adds, each input once per PCH channels; the accumulators go straight to the
     * requantization (the per-channel multiplier and shift loaded once for all positions) */
    const input_t *xs[POSITIONS];
    int32_t g, j, c, p;
    for (p = 0; p < np; ++p) {
        xs[p] = x + (p < npos ? p : npos - 1) * stride;     /* missing positions: computed, not stored */
    }
    for (g = 0; g < count; g += PCH) {
        const int8_t *wg = w + 2 * g;
        int32_t acc[POSITIONS][PCH];
#pragma GCC unroll 4
        for (p = 0; p < np; ++p) {
#pragma GCC unroll 4
            for (c = 0; c < PCH; ++c) {
                acc[p][c] = bias_zp[g + c];
            }
        }
#if defined(__riscv)
#pragma GCC unroll 2    /* two input pairs per pass: 1.5 % fewer instructions on rv32imc; the lx106 spills */
#endif
        for (j = 0; j < n; j += 2, wg += 2 * BLOCK) {
            int32_t x0[POSITIONS], x1[POSITIONS];
#pragma GCC unroll 4
            for (p = 0; p < np; ++p) {
                x0[p] = xs[p][j];
                x1[p] = xs[p][j + 1];
            }
#pragma GCC unroll 4
            for (c = 0; c < PCH; ++c) {     /* channel g + c: bytes (c & 1) and 2 + (c & 1) of its pair */
                const int32_t w0 = wg[4 * (c >> 1) + (c & 1)], w1 = wg[4 * (c >> 1) + 2 + (c & 1)];
#pragma GCC unroll 4
                for (p = 0; p < np; ++p) {
                    acc[p][c] += x0[p] * w0 + x1[p] * w1;
                }
            }
        }
        if (pool) {
#pragma GCC unroll 4
            for (c = 0; c < PCH; ++c) {
                acc[0][c] = acc[0][c] > acc[np - 1][c] ? acc[0][c] : acc[np - 1][c];
            }
        }
#pragma GCC unroll 4
        for (c = 0; c < PCH; ++c) {
            if (g + c < count) {
                const int32_t m = mult[g + c], s = shift[g + c];
#pragma GCC unroll 4
                for (p = 0; p < np; ++p) {
                    if (p < npos && (p == 0 || !pool)) {
                        out[p * out_stride + g + c] = requant_s8(acc[p][c], m, s, out_zp, act_min, act_max);
                    }
                }
            }
        }
    }
}

BLOCK_INLINE void block_s8(const input_t *x, int32_t stride, int32_t npos, int32_t pool, const weight_t *restrict w,
                           int32_t n, const int32_t *restrict bias_zp, const int32_t *restrict mult,
                           const int32_t *restrict shift, int32_t count, int32_t out_zp, int32_t act_min,
                           int32_t act_max, int8_t *restrict out, int32_t out_stride)
{
    if (npos > 1) {
        portable_block(x, stride, POSITIONS, npos, pool, w, n, bias_zp, mult, shift, count, out_zp, act_min, act_max,
                       out, out_stride);
    } else {            /* a dense layer, or a convolution's last odd position */
        portable_block(x, stride, 1, 1, 0, w, n, bias_zp, mult, shift, count, out_zp, act_min, act_max, out,
                       out_stride);
    }
}

#endif


/* A convolution is inlined into classify where that was measured to pay (a copy per layer, with
 * its shape as constants: the second position's loads take immediate offsets): on Cortex-M4 7 %
 * and on AArch64 4 % fewer instructions per beat; on rv32imc 2 % more, so not in the portable path. */
#if defined(KERNELS_DSP) || defined(KERNELS_NEON)
#define LAYER_INLINE BLOCK_INLINE
#else
#define LAYER_INLINE static
#endif

/* Channels-last 1-D convolution, stride 1, SAME padding. `in` is the window of output 0: the
 * (k - 1) / 2 zero-point rows before the len input rows; weights (cout / BLOCK, k * cin inputs).
 * Two output positions per block call (their windows are cin apart). With pool = 1 the max pool
 * (window 2, stride 2) that follows the convolution is done on the accumulators of those two
 * positions: len / 2 output rows, and the convolution's own output is never stored. */
LAYER_INLINE void conv1d_s8(const int8_t *in, int32_t len, int32_t cin, const weight_t *restrict w,
                            const int32_t *restrict bias_zp, const int32_t *restrict mult,
                            const int32_t *restrict shift, int32_t cout, int32_t k, int32_t out_zp, int32_t act_min,
                            int32_t act_max, int32_t pool, int8_t *restrict out)
{
    const int32_t n = k * cin, n_pad = (n + GROUP - 1) / GROUP * GROUP;
    const input_t *x = layer_input(in, (len - 1) * cin + READ_EXTENT(n));
    int32_t t, o;
    for (o = 0; o < cout; o += BLOCK) {
        const int32_t *bias = bias_zp + o;
#if defined(KERNELS_VNNI)
        int32_t bias_u8[BLOCK];
        vnni_bias(w + o * n_pad, n, bias, bias_u8);
        bias = bias_u8;
#endif
        for (t = 0; t + pool < len; t += POSITIONS) {      /* pooled: whole pairs only */
            block_s8(x + t * cin, cin, len - t < POSITIONS ? len - t : POSITIONS, pool, w + o * n_pad, n, bias,
                     mult + o, shift + o, cout - o < BLOCK ? cout - o : BLOCK, out_zp, act_min, act_max,
                     out + (pool ? t / POSITIONS : t) * cout + o, cout);
        }
    }
}

/* Max pooling, window 2, stride 2, channels-last (where no convolution before it takes it over). */
static inline void maxpool2_s8(const int8_t *in, int32_t len, int32_t ch, int8_t *out)
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
static void fc_s8(const int8_t *in, int32_t n_in, const weight_t *restrict w, const int32_t *restrict bias_zp,
                  const int32_t *restrict mult, const int32_t *restrict shift, int32_t n_out, int32_t out_zp,
                  int32_t act_min, int32_t act_max, int8_t *restrict out)
{
    const int32_t n_pad = (n_in + GROUP - 1) / GROUP * GROUP;
    const input_t *x = layer_input(in, READ_EXTENT(n_in));
    int32_t o;
    for (o = 0; o < n_out; o += BLOCK) {
        const int32_t *bias = bias_zp + o;
#if defined(KERNELS_VNNI)
        int32_t bias_u8[BLOCK];
        vnni_bias(w + o * n_pad, n_in, bias, bias_u8);
        bias = bias_u8;
#endif
        block_s8(x, 0, 1, 0, w + o * n_pad, n_in, bias, mult + o, shift + o,
                 n_out - o < BLOCK ? n_out - o : BLOCK, out_zp, act_min, act_max, out + o, 0);
    }
}

/* The class of a beat, from the output layer's int32 accumulators. The int8 logits round that
 * layer to one step of its scale, so two classes can tie where the float model had a clear
 * winner; here every class gets score = round(acc * mult * 2^(shift - 31 + bits)), exactly, in 64
 * bits: the same scale for all classes (the per-channel weight scales are in mult), 2^bits times
 * finer than the logits, not clamped. Ties go to the lower class index. A handful of multiply-adds
 * per class: the accumulators are computed again rather than kept by the block kernels. */
static int decide_fc(const int8_t *in, int32_t n_in, const weight_t *w, const int32_t *bias_zp,
                     const int32_t *mult, const int32_t *shift, int32_t n_out, int32_t bits)
{
    const int32_t n_pad = (n_in + GROUP - 1) / GROUP * GROUP;
    int32_t o, j;
    int best = 0;
    int64_t best_score = 0;
    for (o = 0; o < n_out; ++o) {
        const int32_t right = 31 - STORED_SHIFT(shift[o]) - bits;     /* >= 1: the generator chooses bits so */
        int32_t acc = bias_zp[o];
        int64_t score;
#if defined(KERNELS_DSP)
        /* output o's weights for inputs 0 .. 3, then 4 .. 7 eight values on */
        const weight_t *wo = w + (o - (o & 1)) * n_pad + (o & 1) * 4;
        for (j = 0; j < n_in; j += 4, wo += 8) {       /* past n_in: zero weights */
            acc += in[j] * wo[0] + in[j + 1] * wo[1] + in[j + 2] * wo[2] + in[j + 3] * wo[3];
        }
#else
        /* output o's weight for input 0 in the layout above; input j + 2 is 2 * BLOCK bytes on */
        const weight_t *wo = w + (o / BLOCK) * n_pad * BLOCK + ((o % BLOCK) >> 1) * 4 + (o & 1);
        for (j = 0; j < n_in; j += 2, wo += 2 * BLOCK) {     /* an odd n_in: a zero weight for the last + 1 */
            acc += (int32_t)in[j] * wo[0] + (int32_t)in[j + 1] * wo[2];
        }
#endif
        score = ((int64_t)acc * mult[o] + ((int64_t)1 << (right - 1))) >> right;
        if (o == 0 || score > best_score) {
            best = (int)o;
            best_score = score;
        }
    }
    return best;
}
