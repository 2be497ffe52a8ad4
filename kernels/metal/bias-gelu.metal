// bias_gelu: out = gelu(x + bias) with exact (erf) GELU, one thread per
// element; the grid is rounded up to whole threadgroups, so the index is
// bound-checked (see gomps_args_bias_gelu). out may equal x.
#include <metal_stdlib>
#include "gomps-args.h"
#include "gomps-shader.h"

#define GOMPS_PARAMS_bias_gelu(T)                               \
    constant gomps_args_bias_gelu &args [[buffer(0)]],          \
    device const T *x [[buffer(1)]],                            \
    device const T *bias [[buffer(2)]],                         \
    device T *out [[buffer(3)]],                                \
    uint gid [[thread_position_in_grid]]

template <typename T>
[[kernel]] void bias_gelu(GOMPS_PARAMS_bias_gelu(T)) {
    if (gid >= args.n) return; // gomps:bounds-check
    const float v = float(x[gid]) + float(bias[gid % args.cols]);
    out[gid] = T(gomps_gelu(v));
}

GOMPS_KERNEL(bias_gelu, f32, float)
GOMPS_KERNEL(bias_gelu, f16, half)
