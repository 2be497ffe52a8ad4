/* layernorm.c: LayerNorm over rows, the plain reference and a vectorised one. */
#include <math.h>

#include "internal.h"

void gomps_ref_layernorm_f32(const float *x, const float *res, const float *gamma,
                             const float *beta, float eps, int64_t rows, int64_t n, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        const float *rr = res ? res + r * n : NULL;
        float *yr = y + r * n;
        double sum = 0;
        for (int64_t j = 0; j < n; j++) sum += (double)(rr ? xr[j] + rr[j] : xr[j]);
        double mean = sum / (double)n, var = 0;
        for (int64_t j = 0; j < n; j++) {
            double d = (double)(rr ? xr[j] + rr[j] : xr[j]) - mean;
            var += d * d;
        }
        float rstd = (float)(1.0 / sqrt(var / (double)n + (double)eps));
        float fmean = (float)mean;
        for (int64_t j = 0; j < n; j++) {
            float v = rr ? xr[j] + rr[j] : xr[j];
            yr[j] = (v - fmean) * rstd * gamma[j] + beta[j];
        }
    }
}

/* Two passes over each row with 16 independent partial sums, so the compiler
 * vectorises without reassociating (no -ffast-math). */
__attribute__((always_inline)) static inline void
layernorm_body(const float *x, const float *res, const float *gamma, const float *beta, float eps,
               int64_t rows, int64_t n, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * n;
        const float *src = x + r * n;
        if (res) {
            const float *rr = res + r * n;
            for (int64_t j = 0; j < n; j++) yr[j] = src[j] + rr[j];
            src = yr;
        }
        float acc[16] = {0};
        int64_t j = 0;
        for (; j + 16 <= n; j += 16)
            for (int k = 0; k < 16; k++) acc[k] += src[j + k];
        float sum = 0;
        for (int k = 0; k < 16; k++) sum += acc[k];
        for (; j < n; j++) sum += src[j];
        float mean = sum / (float)n;
        float acc2[16] = {0};
        for (j = 0; j + 16 <= n; j += 16)
            for (int k = 0; k < 16; k++) {
                float d = src[j + k] - mean;
                acc2[k] += d * d;
            }
        float var = 0;
        for (int k = 0; k < 16; k++) var += acc2[k];
        for (; j < n; j++) {
            float d = src[j] - mean;
            var += d * d;
        }
        float rstd = 1.0f / sqrtf(var / (float)n + eps);
        for (j = 0; j < n; j++) yr[j] = (src[j] - mean) * rstd * gamma[j] + beta[j];
    }
}

CPU_CLONES(layernorm,
           (const float *x, const float *res, const float *gamma, const float *beta, float eps,
            int64_t rows, int64_t n, float *y),
           (x, res, gamma, beta, eps, rows, n, y))

void cpu_layernorm_fast(const float *x, const float *res, const float *gamma, const float *beta,
                        float eps, int64_t rows, int64_t n, float *y) {
    CPU_DISPATCH(layernorm, (x, res, gamma, beta, eps, rows, n, y));
}
