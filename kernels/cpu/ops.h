/*
 * ops.h: the CPU backend's per-op reference functions in plain C.
 *
 * INTERNAL: not part of the native ABI (kernels/gomps.h) and never included by
 * gomps/. It exists so that kernel tests (the Go tests in kernels/cpu and the
 * Metal shim tests in tools/) can run the reference op on the same inputs as a
 * faster kernel. Every function is single-threaded, allocation-free, plain C99
 * with f32 storage and f32 accumulation, and writes only its output.
 *
 * Layouts are row-major. A "padded batch" is [batch, seq] tokens of which row r
 * has lengths[r] real tokens at its start (1 <= lengths[r] <= seq).
 */
#ifndef GOMPS_CPU_OPS_H
#define GOMPS_CPU_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[rows, n_out] = x[rows, n_in] W^T + b, with W row-major [n_out, n_in]
 * (Hugging Face orientation); b may be NULL. */
void gomps_ref_linear_f32(const float *x, int64_t rows, int64_t n_in, const float *w,
                          const float *b, int64_t n_out, float *y);

/* y[rows, n] = LayerNorm(x + res) * gamma + beta over each row of n, with the
 * biased variance and eps inside the square root (as PyTorch); res may be NULL.
 * y may equal x. */
void gomps_ref_layernorm_f32(const float *x, const float *res, const float *gamma,
                             const float *beta, float eps, int64_t rows, int64_t n, float *y);

/* Softmax of each row of x[rows, n] over its first valid entries; entries at
 * index >= valid are written as 0 (exactly as an additive mask of -inf would
 * give). 1 <= valid <= n. y may equal x. */
void gomps_ref_softmax_masked_f32(const float *x, int64_t rows, int64_t n, int64_t valid,
                                  float *y);

/* y = x * 0.5 * (1 + erf(x / sqrt(2))) over n elements (exact GELU). y may equal x. */
void gomps_ref_gelu_erf_f32(const float *x, int64_t n, float *y);

/* Embeddings of a padded batch: y[b*seq + t] = LayerNorm(word[ids] + position[t]
 * + token_type[type_ids]) for t < lengths[b]; padded rows of y are written as 0.
 * Tables are [*, hidden]. ids and type_ids must be in range for real tokens
 * (the caller checks). */
void gomps_ref_embeddings_f32(const float *word, const float *position, const float *token_type,
                              const float *gamma, const float *beta, float eps, int64_t hidden,
                              const int32_t *ids, const int32_t *type_ids, int32_t batch,
                              int32_t seq, const int32_t *lengths, float *y);

/* Multi-head self-attention of a padded batch. qkv is [batch*seq, 3*heads*head_dim]
 * with each token's Q, K, V (each [heads, head_dim]) side by side, as the fused
 * QKV projection gives. ctx[batch*seq, heads*head_dim] = softmax(Q K^T /
 * sqrt(head_dim)) V per (row, head), keys restricted to the row's real tokens.
 * Padded query rows of ctx are written as 0. scratch holds seq floats. */
void gomps_ref_attention_f32(const float *qkv, int32_t batch, int32_t seq, int32_t heads,
                             int32_t head_dim, const int32_t *lengths, float *scratch,
                             float *ctx);

/* The pooler and classifier on CLS vectors: logits[r, k] = cls_w[k] .
 * tanh(pooler_w cls[r] + pooler_b) + cls_b[k] for each of num_labels labels;
 * cls is [rows, hidden], cls_w [num_labels, hidden], logits [rows,
 * num_labels]; scratch holds hidden floats. */
void gomps_ref_head_f32(const float *cls, int64_t rows, int64_t hidden, const float *pooler_w,
                        const float *pooler_b, const float *cls_w, const float *cls_b,
                        int64_t num_labels, float *scratch, float *logits);

/* The reference forward pass, built from the functions above: what the CPU
 * backend's plain path (GOMPS_CPU_PLAIN=1) runs, and any other plain C
 * backend may run. Every row is computed at the padded length (padded rows'
 * tokens are computed and ignored). */

/* One encoder layer's weights (Hugging Face orientation, [n_out, n_in]). */
typedef struct gomps_ref_layer {
    const float *qkv_w, *qkv_b;           /* [3H, H], [3H]: Q, K, V side by side */
    const float *attn_out_w, *attn_out_b; /* [H, H], [H]                         */
    const float *attn_ln_gamma, *attn_ln_beta;
    const float *ffn_up_w, *ffn_up_b;     /* [I, H], [I]                          */
    const float *ffn_down_w, *ffn_down_b; /* [H, I], [H]                          */
    const float *ffn_ln_gamma, *ffn_ln_beta;
} gomps_ref_layer;

/* A BERT-style cross-encoder's weights, all f32. */
typedef struct gomps_ref_model {
    int64_t hidden, intermediate;
    int32_t num_layers, num_heads, num_labels;
    float   eps;
    const float *word, *position, *token_type, *emb_ln_gamma, *emb_ln_beta;
    const gomps_ref_layer *layers; /* [num_layers] */
    const float *pooler_w, *pooler_b, *cls_w, *cls_b;
} gomps_ref_model;

/* Scratch of one forward of batch x seq tokens. */
typedef struct gomps_ref_scratch {
    float  *hidden; /* [batch * seq, H]  */
    float  *qkv;    /* [batch * seq, 3H] */
    float  *attn;   /* [batch * seq, H]  */
    float  *tmp;    /* [chunk, H]        */
    float  *inter;  /* [chunk, I]        */
    float  *scores; /* [seq]             */
    float  *cls;    /* [batch, H]        */
    float  *head;   /* [H]               */
    int64_t chunk;  /* rows per pass of the attention output and FFN, >= 1 */
} gomps_ref_scratch;

/* logits[batch, num_labels] of a padded batch (ids, type_ids and lengths as
 * gomps_ref_embeddings_f32 takes them, already checked by the caller). */
void gomps_ref_forward_f32(const gomps_ref_model *m, const gomps_ref_scratch *s, int32_t batch, int32_t seq,
                           const int32_t *ids, const int32_t *type_ids, const int32_t *lengths, float *logits);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_CPU_OPS_H */
