// layer_norm: LayerNorm over the last axis, one threadgroup per row, fp32
// statistics for every dtype (see gomps_args_layer_norm). out may equal x.
#include <metal_stdlib>
#include "gomps-args.h"
#include "gomps-shader.h"

#define GOMPS_PARAMS_layer_norm(T)                              \
    constant gomps_args_layer_norm &args [[buffer(0)]],         \
    device const T *x [[buffer(1)]],                            \
    device const T *gamma [[buffer(2)]],                        \
    device const T *beta [[buffer(3)]],                         \
    device T *out [[buffer(4)]],                                \
    uint row [[threadgroup_position_in_grid]],                  \
    uint tid [[thread_position_in_threadgroup]],                \
    uint lane [[thread_index_in_simdgroup]],                    \
    uint sg [[simdgroup_index_in_threadgroup]]

template <typename T>
[[kernel]] void layer_norm(GOMPS_PARAMS_layer_norm(T)) {
    threadgroup float partial[GOMPS_ROW_SIMDGROUPS];
    if (row >= args.rows) {
        return; // the whole threadgroup leaves together
    }
    const uint n = args.cols;
    device const T *xr = x + row * n;
    float s = 0.0f;
    for (uint c = tid; c < n; c += GOMPS_ROW_THREADS) {
        s += float(xr[c]);
    }
    const float mean = gomps_group_sum(s, partial, lane, sg, GOMPS_ROW_SIMDGROUPS) / float(n);
    float q = 0.0f;
    for (uint c = tid; c < n; c += GOMPS_ROW_THREADS) {
        const float d = float(xr[c]) - mean;
        q += d * d;
    }
    const float var = gomps_group_sum(q, partial, lane, sg, GOMPS_ROW_SIMDGROUPS) / float(n);
    const float inv = 1.0f / sqrt(var + args.eps);
    device T *o = out + row * n;
    for (uint c = tid; c < n; c += GOMPS_ROW_THREADS) {
        o[c] = T((float(xr[c]) - mean) * inv * float(gamma[c]) + float(beta[c]));
    }
}

GOMPS_KERNEL(layer_norm, f32, float)
GOMPS_KERNEL(layer_norm, f16, half)
