/* int8 kernels: TFLite's reference arithmetic (MultiplyByQuantizedMultiplier), C99, no float. */

static int32_t sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static int32_t requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    int64_t scaled = (int64_t)acc * ((int64_t)1 << left);
    if (scaled > INT32_MAX) {
        scaled = INT32_MAX;
    } else if (scaled < INT32_MIN) {
        scaled = INT32_MIN;
    }
    return rounding_divide_by_pot(sat_rounding_doubling_high_mul((int32_t)scaled, multiplier), right);
}

static int8_t clamp_int8(int32_t y, int32_t lo, int32_t hi)
{
    return (int8_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* acc[o] += x * w[o] for every output channel: the inner loop of every layer. Weights are stored
 * tap-major (k, in, out), so this loop runs over contiguous outputs and compilers vectorize it. */
static void mac_s8(int32_t *acc, int32_t x, const int8_t *w, int32_t n_out)
{
    int32_t o;
    for (o = 0; o < n_out; ++o) {
        acc[o] += x * (int32_t)w[o];
    }
}

static void requantize_s8(const int32_t *acc, const int32_t *mult, const int32_t *shift, int32_t n,
                          int32_t out_zp, int32_t act_min, int32_t act_max, int8_t *out)
{
    int32_t o;
    for (o = 0; o < n; ++o) {
        out[o] = clamp_int8(requantize(acc[o], mult[o], shift[o]) + out_zp, act_min, act_max);
    }
}

/* Channels-last 1-D convolution, stride 1, SAME padding; weights (k, in, out).
 * Where the window lies inside the input, sum((x - in_zp) * w) = sum(x * w) - in_zp * sum(w): the
 * second term is folded into bias_zp at generation time. The (k - 1) edge positions subtract the
 * zero point and skip the padding taps. */
static void conv1d_s8(const int8_t *in, int32_t len, int32_t cin, int32_t in_zp,
                      const int8_t *w, const int32_t *bias, const int32_t *bias_zp, const int32_t *mult,
                      const int32_t *shift, int32_t cout, int32_t k, int32_t out_zp, int32_t act_min,
                      int32_t act_max, int8_t *out)
{
    const int32_t pad = (k - 1) / 2;
    int32_t acc[MAX_CHANNELS];
    int32_t t, j, c;
    for (t = 0; t < len; ++t) {
        const int32_t s0 = t - pad;
        if (s0 >= 0 && s0 + k <= len) {
            const int8_t *x = in + s0 * cin;
            memcpy(acc, bias_zp, (size_t)cout * sizeof acc[0]);
            for (c = 0; c < k * cin; ++c) {
                mac_s8(acc, x[c], w + c * cout, cout);
            }
        } else {
            memcpy(acc, bias, (size_t)cout * sizeof acc[0]);
            for (j = 0; j < k; ++j) {
                const int32_t s = s0 + j;
                if (s < 0 || s >= len) {
                    continue;
                }
                for (c = 0; c < cin; ++c) {
                    mac_s8(acc, (int32_t)in[s * cin + c] - in_zp, w + (j * cin + c) * cout, cout);
                }
            }
        }
        requantize_s8(acc, mult, shift, cout, out_zp, act_min, act_max, out + t * cout);
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

/* Fully connected; weights (in, out); bias_zp = bias - in_zp * sum(w) per output. */
static void fc_s8(const int8_t *in, int32_t n_in, const int8_t *w, const int32_t *bias_zp,
                  const int32_t *mult, const int32_t *shift, int32_t n_out, int32_t out_zp,
                  int32_t act_min, int32_t act_max, int8_t *out)
{
    int32_t acc[MAX_CHANNELS];
    int32_t i;
    memcpy(acc, bias_zp, (size_t)n_out * sizeof acc[0]);
    for (i = 0; i < n_in; ++i) {
        mac_s8(acc, in[i], w + i * n_out, n_out);
    }
    requantize_s8(acc, mult, shift, n_out, out_zp, act_min, act_max, out);
}
