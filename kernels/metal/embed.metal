// embed: the embedding front end in one pass per token row: gather the word,
// position and token type rows, sum them and apply the embedding LayerNorm.
// Replaces the graph's three gathers, two adds and LayerNorm before the first
// layer (see gomps_args_embed).
#include <metal_stdlib>
#include "gomps-args.h"
#include "gomps-shader.h"

#define GOMPS_PARAMS_embed(T)                                   \
    constant gomps_args_embed &args [[buffer(0)]],              \
    device const int *ids [[buffer(1)]],                        \
    device const int *type_ids [[buffer(2)]],                   \
    device const T *word [[buffer(3)]],                         \
    device const T *position [[buffer(4)]],                     \
    device const T *token_type [[buffer(5)]],                   \
    device const T *gamma [[buffer(6)]],                        \
    device const T *beta [[buffer(7)]],                         \
    device T *out [[buffer(8)]],                                \
    uint row [[threadgroup_position_in_grid]],                  \
    uint tid [[thread_position_in_threadgroup]],                \
    uint lane [[thread_index_in_simdgroup]],                    \
    uint sg [[simdgroup_index_in_threadgroup]]

template <typename T>
[[kernel]] void embed(GOMPS_PARAMS_embed(T)) {
    threadgroup float partial[GOMPS_ROW_SIMDGROUPS];
    if (row >= args.rows) {
        return; // the whole threadgroup leaves together
    }
    const uint h = args.hidden;
    const uint id = uint(clamp(ids[row], 0, int(args.vocab) - 1));
    const uint ty = uint(clamp(type_ids[row], 0, int(args.type_vocab) - 1));
    const uint pos = min(row % args.seq, args.max_position - 1);
    device const T *w = word + id * h;
    device const T *p = position + pos * h;
    device const T *t = token_type + ty * h;

    float v[GOMPS_EMBED_MAX_PER_THREAD];
    float s = 0.0f;
    for (uint k = 0; k < GOMPS_EMBED_MAX_PER_THREAD; ++k) {
        const uint c = tid + k * GOMPS_ROW_THREADS;
        float e = 0.0f;
        if (c < h) {
            e = float(w[c]) + float(p[c]) + float(t[c]);
        }
        v[k] = e;
        s += e;
    }
    const float mean = gomps_group_sum(s, partial, lane, sg, GOMPS_ROW_SIMDGROUPS) / float(h);
    float q = 0.0f;
    for (uint k = 0; k < GOMPS_EMBED_MAX_PER_THREAD; ++k) {
        const uint c = tid + k * GOMPS_ROW_THREADS;
        if (c < h) {
            const float d = v[k] - mean;
            q += d * d;
        }
    }
    const float var = gomps_group_sum(q, partial, lane, sg, GOMPS_ROW_SIMDGROUPS) / float(h);
    const float inv = 1.0f / sqrt(var + args.eps);
    device T *o = out + row * h;
    for (uint k = 0; k < GOMPS_EMBED_MAX_PER_THREAD; ++k) {
        const uint c = tid + k * GOMPS_ROW_THREADS;
        if (c < h) {
            o[c] = T((v[k] - mean) * inv * float(gamma[c]) + float(beta[c]));
        }
    }
}

GOMPS_KERNEL(embed, f32, float)
GOMPS_KERNEL(embed, f16, half)
