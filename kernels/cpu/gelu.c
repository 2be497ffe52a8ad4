/* gelu.c: exact (erf) GELU. The fast path fuses it into the FFN-up matmul as a
 * oneDNN gelu_erf post-op (gemm.c); this is the reference. */
#include <math.h>

#include "internal.h"

void gomps_ref_gelu_erf_f32(const float *x, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}
