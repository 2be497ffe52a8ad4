/*
 * reference.c: the reference forward pass (ops.h), from the per-op
 * reference functions: the CPU backend's plain path and any plain C backend.
 */
#include <math.h>
#include <string.h>

#include "ops.h"

void gomps_ref_head_f32(const float *cls, int64_t rows, int64_t hidden, const float *pooler_w,
                        const float *pooler_b, const float *cls_w, const float *cls_b,
                        int64_t num_labels, float *scratch, float *logits) {
    for (int64_t r = 0; r < rows; r++) {
        gomps_ref_linear_f32(cls + r * hidden, 1, hidden, pooler_w, pooler_b, hidden, scratch);
        for (int64_t j = 0; j < hidden; j++) scratch[j] = tanhf(scratch[j]);
        for (int64_t k = 0; k < num_labels; k++) {
            float acc = 0;
            for (int64_t j = 0; j < hidden; j++) acc += scratch[j] * cls_w[k * hidden + j];
            logits[r * num_labels + k] = acc + cls_b[k];
        }
    }
}

void gomps_ref_forward_f32(const gomps_ref_model *m, const gomps_ref_scratch *s, int32_t batch, int32_t seq,
                           const int32_t *ids, const int32_t *type_ids, const int32_t *lengths, float *logits) {
    const int64_t H = m->hidden, I = m->intermediate, rows = (int64_t)batch * seq;
    gomps_ref_embeddings_f32(m->word, m->position, m->token_type, m->emb_ln_gamma, m->emb_ln_beta, m->eps, H, ids,
                             type_ids, batch, seq, lengths, s->hidden);
    for (int32_t l = 0; l < m->num_layers; l++) {
        const gomps_ref_layer *ly = &m->layers[l];
        gomps_ref_linear_f32(s->hidden, rows, H, ly->qkv_w, ly->qkv_b, 3 * H, s->qkv);
        gomps_ref_attention_f32(s->qkv, batch, seq, m->num_heads, (int32_t)(H / m->num_heads), lengths, s->scores,
                                s->attn);
        for (int64_t c = 0; c < rows; c += s->chunk) {
            int64_t n = rows - c < s->chunk ? rows - c : s->chunk;
            float *h = s->hidden + c * H;
            gomps_ref_linear_f32(s->attn + c * H, n, H, ly->attn_out_w, ly->attn_out_b, H, s->tmp);
            gomps_ref_layernorm_f32(s->tmp, h, ly->attn_ln_gamma, ly->attn_ln_beta, m->eps, n, H, h);
            gomps_ref_linear_f32(h, n, H, ly->ffn_up_w, ly->ffn_up_b, I, s->inter);
            gomps_ref_gelu_erf_f32(s->inter, n * I, s->inter);
            gomps_ref_linear_f32(s->inter, n, I, ly->ffn_down_w, ly->ffn_down_b, H, s->tmp);
            gomps_ref_layernorm_f32(s->tmp, h, ly->ffn_ln_gamma, ly->ffn_ln_beta, m->eps, n, H, h);
        }
    }
    for (int32_t b = 0; b < batch; b++)
        memcpy(s->cls + (int64_t)b * H, s->hidden + (int64_t)b * seq * H, (size_t)H * sizeof(float));
    gomps_ref_head_f32(s->cls, batch, H, m->pooler_w, m->pooler_b, m->cls_w, m->cls_b, m->num_labels, s->head,
                       logits);
}
