/* embeddings.c: word + position + token type embeddings, then LayerNorm. */
#include <string.h>

#include "internal.h"

void gomps_ref_embeddings_f32(const float *word, const float *position, const float *token_type,
                              const float *gamma, const float *beta, float eps, int64_t hidden,
                              const int32_t *ids, const int32_t *type_ids, int32_t batch,
                              int32_t seq, const int32_t *lengths, float *y) {
    for (int32_t b = 0; b < batch; b++) {
        for (int32_t t = 0; t < seq; t++) {
            int64_t i = (int64_t)b * seq + t;
            float *yr = y + i * hidden;
            if (t >= lengths[b]) {
                memset(yr, 0, (size_t)hidden * sizeof(float));
                continue;
            }
            const float *w = word + (int64_t)ids[i] * hidden;
            const float *p = position + (int64_t)t * hidden;
            const float *ty = token_type + (int64_t)type_ids[i] * hidden;
            /* the order of the sums is PyTorch's: (word + type) + position */
            for (int64_t j = 0; j < hidden; j++) yr[j] = (w[j] + ty[j]) + p[j];
            gomps_ref_layernorm_f32(yr, NULL, gamma, beta, eps, 1, hidden, yr);
        }
    }
}

/* The fast path's embeddings over packed rows: token t of row b lands at row
 * offsets[b] + t of y. Rows are independent, so they are spread over threads. */
void cpu_embeddings_packed(const gomps_model_t *m, const int32_t *ids, const int32_t *type_ids,
                           int32_t batch, int32_t seq, const int64_t *offsets, int n_threads,
                           float *y) {
    const int64_t H = m->file.hidden_size;
    const int64_t total = offsets[batch];
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t i = 0; i < total; i++) {
        int32_t b = 0;
        while (offsets[b + 1] <= i) b++;
        int64_t t = i - offsets[b];
        int64_t src = (int64_t)b * seq + t;
        const float *w = m->word + (int64_t)ids[src] * H;
        const float *ty = m->token_type + (int64_t)type_ids[src] * H;
        const float *p = m->position + t * H;
        float *yr = y + i * H;
        for (int64_t j = 0; j < H; j++) yr[j] = (w[j] + ty[j]) + p[j];
        cpu_layernorm_fast(yr, NULL, m->emb_ln_gamma, m->emb_ln_beta, m->eps, 1, H, yr);
    }
}
