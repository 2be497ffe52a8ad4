/*
 * gomps-args.h: the argument structs of the gomps Metal kernels, shared by the
 * host (the Objective-C files of metal/, plain C) and the shaders (the .metal
 * files beside it, MSL).
 *
 * Rules (STYLE.md, Naming / Metal):
 *   - buffer index 0 of every kernel is its gomps_args_<op> struct, set with
 *     setBytes:length:atIndex:0 by the host;
 *   - every field is a 32-bit scalar, so the layout is the same in C and MSL
 *     (no padding, no vector types);
 *   - kernel names are <op>_<dtype>[_<variant>], dtype f32 or f16, built on
 *     the host by gomps_metal_kernel_name (metal/) and in the shaders by the
 *     GOMPS_KERNEL instantiation macro (gomps-shader.h).
 *
 * Not part of the native ABI (kernels/gomps.h); the Go library never sees it.
 */
#ifndef GOMPS_ARGS_H
#define GOMPS_ARGS_H

#ifdef __METAL_VERSION__
typedef uint gomps_u32;
#else
#include <stdint.h>
typedef uint32_t gomps_u32;
#endif

/* Threads per threadgroup of every row kernel (embed, layer_norm,
 * masked_softmax). A multiple of the 32-lane SIMD width; the host dispatches
 * exactly this many and checks the pipeline's maxTotalThreadsPerThreadgroup. */
#define GOMPS_ROW_THREADS 128
#define GOMPS_SIMD_WIDTH 32
/* Threads per threadgroup of the elementwise kernels (bias_gelu). The grid is
 * rounded up to a multiple of it, so those kernels bound-check their index. */
#define GOMPS_ELEM_THREADS 256
/* The embedding front end keeps a row in registers: hidden_size must be at
 * most GOMPS_ROW_THREADS * GOMPS_EMBED_MAX_PER_THREAD. */
#define GOMPS_EMBED_MAX_PER_THREAD 8

/* The additive mask of a padded key (HF BERT's historical value; finite on
 * purpose: -inf makes fully masked rows NaN on MPS). */
#define GOMPS_MASK_VALUE (-10000.0f)

/* embed: one threadgroup per token row r of a [batch, seq] bucket.
 *   out[r, :] = LayerNorm(word[ids[r]] + position[r % seq] + type[type_ids[r]])
 * ids and type_ids are clamped into range (the host validates them first). */
typedef struct gomps_args_embed {
    gomps_u32 rows;         /* batch * seq                        */
    gomps_u32 seq;          /* position of row r is r % seq       */
    gomps_u32 hidden;       /* H, <= 128 * GOMPS_EMBED_MAX_PER_THREAD */
    gomps_u32 vocab;        /* rows of the word table             */
    gomps_u32 type_vocab;   /* rows of the token type table       */
    gomps_u32 max_position; /* rows of the position table (>= seq) */
    float     eps;          /* LayerNorm epsilon                  */
} gomps_args_embed;

/* layer_norm: one threadgroup per row; statistics in fp32 for every dtype.
 *   out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta, var biased. */
typedef struct gomps_args_layer_norm {
    gomps_u32 rows;
    gomps_u32 cols;
    float     eps;
} gomps_args_layer_norm;

/* masked_softmax: one threadgroup per score row of [batch, heads, seq, keys].
 *   p[r, j] = softmax_j(x[r, j] * scale + (j < lengths[r / rows_per_batch] ? 0 : mask_value))
 * computed in fp32 for every dtype. */
typedef struct gomps_args_masked_softmax {
    gomps_u32 rows;           /* batch * heads * seq                 */
    gomps_u32 cols;           /* keys per row (the padded seq)       */
    gomps_u32 rows_per_batch; /* heads * seq                         */
    float     scale;          /* 1/sqrt(head_dim), or 1 if pre-scaled */
    float     mask_value;     /* GOMPS_MASK_VALUE                    */
} gomps_args_masked_softmax;

/* bias_gelu: one thread per element of [rows, cols], grid rounded up.
 *   out[i] = gelu(x[i] + bias[i % cols]), gelu(v) = v/2 * (1 + erf(v/sqrt(2))) */
typedef struct gomps_args_bias_gelu {
    gomps_u32 n;    /* rows * cols */
    gomps_u32 cols;
} gomps_args_bias_gelu;

#endif /* GOMPS_ARGS_H */
