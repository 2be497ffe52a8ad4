// masked_softmax: scale, additive padding mask and softmax of attention
// scores in one pass per row, in fp32 for every dtype (see
// gomps_args_masked_softmax). out may equal x.
#include <metal_stdlib>
#include "gomps-args.h"
#include "gomps-shader.h"

#define GOMPS_PARAMS_masked_softmax(T)                          \
    constant gomps_args_masked_softmax &args [[buffer(0)]],     \
    device const T *x [[buffer(1)]],                            \
    device const int *lengths [[buffer(2)]],                    \
    device T *out [[buffer(3)]],                                \
    uint row [[threadgroup_position_in_grid]],                  \
    uint tid [[thread_position_in_threadgroup]],                \
    uint lane [[thread_index_in_simdgroup]],                    \
    uint sg [[simdgroup_index_in_threadgroup]]

template <typename T>
[[kernel]] void masked_softmax(GOMPS_PARAMS_masked_softmax(T)) {
    threadgroup float partial[GOMPS_ROW_SIMDGROUPS];
    if (row >= args.rows) {
        return; // the whole threadgroup leaves together
    }
    const uint n = args.cols;
    const int len = lengths[row / args.rows_per_batch];
    device const T *xr = x + row * n;
    float m = GOMPS_FLOAT_LOWEST;
    for (uint c = tid; c < n; c += GOMPS_ROW_THREADS) {
        const float s = float(xr[c]) * args.scale + (int(c) < len ? 0.0f : args.mask_value);
        m = max(m, s);
    }
    m = gomps_group_max(m, partial, lane, sg, GOMPS_ROW_SIMDGROUPS);
    float z = 0.0f;
    for (uint c = tid; c < n; c += GOMPS_ROW_THREADS) {
        const float s = float(xr[c]) * args.scale + (int(c) < len ? 0.0f : args.mask_value);
        z += exp(s - m);
    }
    z = gomps_group_sum(z, partial, lane, sg, GOMPS_ROW_SIMDGROUPS);
    const float inv = 1.0f / z;
    device T *o = out + row * n;
    for (uint c = tid; c < n; c += GOMPS_ROW_THREADS) {
        const float s = float(xr[c]) * args.scale + (int(c) < len ? 0.0f : args.mask_value);
        o[c] = T(exp(s - m) * inv);
    }
}

GOMPS_KERNEL(masked_softmax, f32, float)
GOMPS_KERNEL(masked_softmax, f16, half)
