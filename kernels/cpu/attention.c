/*
 * attention.c: masked multi-head self-attention and its softmax.
 *
 * Keys past a row's real length are excluded outright, which is exactly what
 * Hugging Face's additive mask does (exp(finfo.min - max) is 0 in f32).
 */
#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void gomps_ref_softmax_masked_f32(const float *x, int64_t rows, int64_t n, int64_t valid,
                                  float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float mx = xr[0];
        for (int64_t j = 1; j < valid; j++) mx = xr[j] > mx ? xr[j] : mx;
        float sum = 0;
        for (int64_t j = 0; j < valid; j++) {
            yr[j] = expf(xr[j] - mx);
            sum += yr[j];
        }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < valid; j++) yr[j] *= inv;
        for (int64_t j = valid; j < n; j++) yr[j] = 0;
    }
}

void gomps_ref_attention_f32(const float *qkv, int32_t batch, int32_t seq, int32_t heads,
                             int32_t head_dim, const int32_t *lengths, float *scratch,
                             float *ctx) {
    const int64_t H = (int64_t)heads * head_dim, H3 = 3 * H;
    const float scale = sqrtf((float)head_dim);
    for (int32_t b = 0; b < batch; b++) {
        const int32_t len = lengths[b];
        const float *base = qkv + (int64_t)b * seq * H3;
        for (int32_t i = 0; i < seq; i++) {
            float *out_row = ctx + ((int64_t)b * seq + i) * H;
            if (i >= len) {
                memset(out_row, 0, (size_t)H * sizeof(float));
                continue;
            }
            for (int32_t h = 0; h < heads; h++) {
                const float *q = base + (int64_t)i * H3 + (int64_t)h * head_dim;
                for (int32_t j = 0; j < len; j++) {
                    const float *k = base + (int64_t)j * H3 + H + (int64_t)h * head_dim;
                    float dot = 0;
                    for (int32_t d = 0; d < head_dim; d++) dot += q[d] * k[d];
                    scratch[j] = dot / scale;
                }
                gomps_ref_softmax_masked_f32(scratch, 1, len, len, scratch);
                float *out = out_row + (int64_t)h * head_dim;
                for (int32_t d = 0; d < head_dim; d++) out[d] = 0;
                for (int32_t j = 0; j < len; j++) {
                    const float *v = base + (int64_t)j * H3 + 2 * H + (int64_t)h * head_dim;
                    for (int32_t d = 0; d < head_dim; d++) out[d] += scratch[j] * v[d];
                }
            }
        }
    }
}

/* exp for x in [-inf, 0] (softmax after max subtraction): Cody-Waite range
 * reduction and the Cephes degree-6 polynomial, about 1 ulp; pure arithmetic
 * so the loop below vectorises. Inputs under -87.3 give ~1e-38, not 0, which
 * does not change a softmax whose sum is >= 1. */
static inline float exp_nonpos(float x) {
    x = x < -87.33654f ? -87.33654f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, 4);
    return p * s;
}

__attribute__((always_inline)) static inline void softmax_row_body(float *x, int64_t n) {
    float mx16[16];
    int64_t j = 0;
    for (int k = 0; k < 16; k++) mx16[k] = x[0];
    for (; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++) mx16[k] = x[j + k] > mx16[k] ? x[j + k] : mx16[k];
    float mx = mx16[0];
    for (int k = 1; k < 16; k++) mx = mx16[k] > mx ? mx16[k] : mx;
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    float acc[16] = {0};
    for (j = 0; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++) {
            float e = exp_nonpos(x[j + k] - mx);
            x[j + k] = e;
            acc[k] += e;
        }
    float sum = 0;
    for (int k = 0; k < 16; k++) sum += acc[k];
    for (; j < n; j++) {
        x[j] = exp_nonpos(x[j] - mx);
        sum += x[j];
    }
    float inv = 1.0f / sum;
    for (j = 0; j < n; j++) x[j] *= inv;
}

CPU_CLONES(softmax_row, (float *x, int64_t n), (x, n))

void cpu_softmax_row_c(float *x, int64_t n) { CPU_DISPATCH(softmax_row, (x, n)); }

#ifdef CPU_X86
#define CPU_HAVE_AVX512_ATTENTION 1

/* Three passes over the row (max; exp and sum; scale), 16 lanes each, the
 * tail under a mask; exp(scale (x - max)) = 2^(c x - c max), c = scale log2 e,
 * in one FMA and cpu_exp2_avx512. */
__attribute__((target("avx512f"))) void cpu_softmax_row_avx512(float *x, int64_t n, float scale) {
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __m512 m0 = ninf, m1 = ninf;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + j));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + j + 16));
    }
    if (j + 16 <= n) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + j));
        j += 16;
    }
    if (tail) m1 = _mm512_max_ps(m1, _mm512_mask_loadu_ps(ninf, tail, x + j));
    const float c = scale * 1.44269504088896341f;
    const __m512 vc = _mm512_set1_ps(c);
    const __m512 b = _mm512_set1_ps(-c * _mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (j = 0; j + 32 <= n; j += 32) {
        __m512 e0 = cpu_exp2_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + j), vc, b));
        __m512 e1 = cpu_exp2_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + j + 16), vc, b));
        _mm512_storeu_ps(x + j, e0);
        _mm512_storeu_ps(x + j + 16, e1);
        a0 = _mm512_add_ps(a0, e0);
        a1 = _mm512_add_ps(a1, e1);
    }
    if (j + 16 <= n) {
        __m512 e = cpu_exp2_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + j), vc, b));
        _mm512_storeu_ps(x + j, e);
        a0 = _mm512_add_ps(a0, e);
        j += 16;
    }
    if (tail) {
        __m512 e = cpu_exp2_avx512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + j), vc, b));
        _mm512_mask_storeu_ps(x + j, tail, e);
        a1 = _mm512_mask_add_ps(a1, tail, a1, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)));
    for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), inv));
    if (tail) _mm512_mask_storeu_ps(x + j, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + j), inv));
}

/* One (row, head) of attention with AVX-512, for head_dim = 16 * DV: K is
 * transposed once into kt [D][np] (np = n rounded up to 16, zero padded; 16 x 16
 * blocks in registers) and V copied to contiguous rows; then for each block
 * of 16 queries: scores against 32 keys per step in blocks of 4 queries (8 FMA
 * accumulators), the softmax of the 16 rows (exp(scale (s - max)) unnormalised,
 * maxima and sums reduced for the 16 rows at once), and the context against
 * the V rows in blocks of 4 queries, divided by the sums at the end. work
 * holds D (np + 16) + (D + 16) np + 16 floats. Inlined with a constant DV. */
__attribute__((target("avx512f"), always_inline)) static inline void
attend_avx512_dv(const float *q, const float *k, const float *v, int64_t ld_in, int64_t n,
                 int64_t nq, const int DV, float scale, float *o, int64_t ld_out, float *work,
                 cpu_att_next next) {
    const int D = 16 * DV;
    const int64_t np = (n + 15) & ~(int64_t)15;
    /* kt rows are np + 16 apart: a power-of-two stride would put all D rows in
     * a few L1 sets */
    const int64_t ldk = np + 16;
    float *kt = work, *s = work + (int64_t)D * ldk, *vc = s + 16 * np, *inv = vc + (int64_t)D * np;
    cpu_prefetch_rows_l1(k, 4 * ld_in, 0, 32, n, 4 * D);
    for (int64_t j0 = 0; j0 < np; j0 += 16) {
        cpu_prefetch_rows_l1(k, 4 * ld_in, j0 + 32, j0 + 48, n, 4 * D);
        cpu_prefetch_rows_l2(v, 4 * ld_in, j0, j0 + 16, n, 4 * D);
        cpu_prefetch_rows_l2(q, 4 * ld_in, j0, j0 + 16, nq, 4 * D);
        for (int dv = 0; dv < DV; dv++) {
            __m512i rows[16];
            for (int j = 0; j < 16; j++)
                rows[j] = j0 + j < n ? _mm512_loadu_si512(k + (j0 + j) * ld_in + 16 * dv)
                                     : _mm512_setzero_si512();
            cpu_transpose16_avx512(rows);
            for (int r = 0; r < 16; r++) _mm512_storeu_si512(kt + (16 * dv + r) * ldk + j0, rows[r]);
        }
    }
    /* V rows are far apart in the fused QKV rows (their stride maps them to a
     * few L1 sets): one contiguous copy */
    for (int64_t j = 0; j < n; j++) memcpy(vc + j * D, v + j * ld_in, (size_t)D * sizeof(float));
    const float c = scale * 1.44269504088896341f;
    const __m512 vcs = _mm512_set1_ps(c), ninf = _mm512_set1_ps(-__builtin_inff());
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    const int R = DV <= 2 ? 8 : 4; /* queries per register block */
    const int64_t qblocks = (nq + 15) / 16;
    for (int64_t b0 = 0; b0 < nq; b0 += 16) {
        cpu_prefetch_next(next, 4 * ld_in, b0 / 16, qblocks, 4 * D);
        const int nb = nq - b0 < 16 ? (int)(nq - b0) : 16;
        for (int i0 = 0; i0 < nb; i0 += R) {
            const int nr = nb - i0 < R ? nb - i0 : R;
            const float *qr[8];
            for (int r = 0; r < R; r++) qr[r] = q + (b0 + i0 + (r < nr ? r : 0)) * ld_in;
            float *sr = s + (int64_t)i0 * np;
            int64_t j = 0;
            for (; j + 32 <= np; j += 32) {
                __m512 a[8][2];
                for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
                for (int d = 0; d < D; d++) {
                    __m512 k0 = _mm512_loadu_ps(kt + (int64_t)d * ldk + j);
                    __m512 k1 = _mm512_loadu_ps(kt + (int64_t)d * ldk + j + 16);
                    for (int r = 0; r < R; r++) {
                        __m512 qb = _mm512_set1_ps(qr[r][d]);
                        a[r][0] = _mm512_fmadd_ps(qb, k0, a[r][0]);
                        a[r][1] = _mm512_fmadd_ps(qb, k1, a[r][1]);
                    }
                }
                for (int r = 0; r < nr; r++) {
                    _mm512_storeu_ps(sr + r * np + j, a[r][0]);
                    _mm512_storeu_ps(sr + r * np + j + 16, a[r][1]);
                }
            }
            for (; j < np; j += 16) {
                __m512 a[8];
                for (int r = 0; r < R; r++) a[r] = _mm512_setzero_ps();
                for (int d = 0; d < D; d++) {
                    __m512 k0 = _mm512_loadu_ps(kt + (int64_t)d * ldk + j);
                    for (int r = 0; r < R; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(qr[r][d]), k0, a[r]);
                }
                for (int r = 0; r < nr; r++) _mm512_storeu_ps(sr + r * np + j, a[r]);
            }
        }
        /* softmax of the nb rows, unnormalised, in place */
        __m512 red[16];
        float mx[16];
        for (int r = 0; r < 16; r++) {
            __m512 m = ninf;
            if (r < nb) {
                const float *x = s + r * np;
                int64_t j = 0;
                for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + j));
                if (tail) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(ninf, tail, x + j));
            }
            red[r] = m;
        }
        _mm512_storeu_ps(mx, _mm512_mul_ps(cpu_reduce16_avx512(red, 1), _mm512_set1_ps(-c)));
        for (int r = 0; r < 16; r++) {
            __m512 acc = _mm512_set1_ps(1.0f);
            if (r < nb) {
                float *x = s + r * np;
                const __m512 b = _mm512_set1_ps(mx[r]);
                acc = _mm512_setzero_ps();
                int64_t j = 0;
                for (; j + 16 <= n; j += 16) {
                    __m512 e = cpu_exp2_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + j), vcs, b));
                    _mm512_storeu_ps(x + j, e);
                    acc = _mm512_add_ps(acc, e);
                }
                if (tail) {
                    __m512 e = cpu_exp2_avx512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + j), vcs, b));
                    _mm512_mask_storeu_ps(x + j, tail, e);
                    acc = _mm512_mask_add_ps(acc, tail, acc, e);
                }
            }
            red[r] = acc;
        }
        _mm512_storeu_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), cpu_reduce16_avx512(red, 0)));
        /* context = P V, R queries at a time */
        for (int i0 = 0; i0 < nb; i0 += R) {
            const int nr = nb - i0 < R ? nb - i0 : R;
            const float *sr = s + (int64_t)i0 * np;
            __m512 cc[8][4];
            for (int r = 0; r < R; r++)
                for (int dv = 0; dv < DV; dv++) cc[r][dv] = _mm512_setzero_ps();
            for (int64_t jj = 0; jj < n; jj++) {
                __m512 vv[4];
                for (int dv = 0; dv < DV; dv++) vv[dv] = _mm512_loadu_ps(vc + jj * D + 16 * dv);
                for (int r = 0; r < R; r++) {
                    __m512 p = _mm512_set1_ps(sr[(r < nr ? r : 0) * np + jj]);
                    for (int dv = 0; dv < DV; dv++) cc[r][dv] = _mm512_fmadd_ps(p, vv[dv], cc[r][dv]);
                }
            }
            for (int r = 0; r < nr; r++) {
                const __m512 f = _mm512_set1_ps(inv[i0 + r]);
                for (int dv = 0; dv < DV; dv++)
                    _mm512_storeu_ps(o + (b0 + i0 + r) * ld_out + 16 * dv, _mm512_mul_ps(cc[r][dv], f));
            }
        }
    }
}

__attribute__((target("avx512f"))) static void attend_avx512(const float *q, const float *k,
                                                             const float *v, int64_t ld_in,
                                                             int64_t n, int64_t nq, int D,
                                                             float scale, float *o,
                                                             int64_t ld_out, float *work,
                                                             cpu_att_next next) {
    switch (D) {
    case 16: attend_avx512_dv(q, k, v, ld_in, n, nq, 1, scale, o, ld_out, work, next); break;
    case 32: attend_avx512_dv(q, k, v, ld_in, n, nq, 2, scale, o, ld_out, work, next); break;
    case 64: attend_avx512_dv(q, k, v, ld_in, n, nq, 4, scale, o, ld_out, work, next); break;
    }
}
#endif

void cpu_softmax_row_fast(float *x, int64_t n) {
#ifdef CPU_X86
    if (cpu_isa_get()->level >= CPU_LEVEL_AVX512) {
        cpu_softmax_row_avx512(x, n, 1.0f);
        return;
    }
#endif
    cpu_softmax_row_c(x, n);
}

int cpu_attention_kind_parse(const char *s) {
    if (!s || !*s) return CPU_ATTENTION_AUTO;
    static const struct {
        const char *name;
        int kind;
    } names[] = {{"sgemm", CPU_ATTENTION_SGEMM},
                 {"avx512", CPU_ATTENTION_AVX512},
                 {"amx", CPU_ATTENTION_AMX},
                 {"avx512bf16", CPU_ATTENTION_AVX512BF16}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) return names[i].kind;
    return -1;
}

static int avx512_attention_ok(int32_t head_dim) {
#ifdef CPU_HAVE_AVX512_ATTENTION
    return cpu_isa_get()->level >= CPU_LEVEL_AVX512 &&
           (head_dim == 16 || head_dim == 32 || head_dim == 64);
#else
    return 0;
#endif
}

int cpu_attention_resolve(int kind, int32_t precision, int32_t head_dim) {
    const int bf16 = precision == GOMPS_PRECISION_BF16;
    if ((kind == CPU_ATTENTION_AUTO || kind == CPU_ATTENTION_AMX) &&
        bf16 && head_dim == 32 && cpu_amx_usable())
        return CPU_ATTENTION_AMX;
    if ((kind == CPU_ATTENTION_AUTO || kind == CPU_ATTENTION_AVX512BF16) && bf16 && head_dim == 32 &&
        cpu_isa_get()->bf16)
        return CPU_ATTENTION_AVX512BF16;
    if (kind == CPU_ATTENTION_SGEMM) return CPU_ATTENTION_SGEMM;
    /* f32 default (and the fallback of amx where it cannot run) */
    return avx512_attention_ok(head_dim) ? CPU_ATTENTION_AVX512 : CPU_ATTENTION_SGEMM;
}

/* Floats of per-thread work memory the fast attention needs (the sgemm path's
 * score matrix, the AVX-512 kernel's copies, the AMX kernel's packed
 * operands), plus 64 bytes to align it. */
int64_t cpu_attention_work(int32_t max_seq, int32_t head_dim) {
    int64_t np = ((int64_t)max_seq + 15) & ~(int64_t)15;
    int64_t a = (int64_t)max_seq * max_seq, b = (2 * (int64_t)head_dim + 32) * np + 16 * (int64_t)head_dim + 16;
    int64_t c = (cpu_amx_work_bytes(max_seq) + 3) / 4;
    a = a > b ? a : b;
    return (a > c ? a : c) + 16;
}

/* One (row, head) per task, b-major so that a row's Q, K, V stay in L2 over
 * its heads, over the context's threads:
 * - SGEMM: S = Q K^T / sqrt(d) with dnnl_sgemm straight from the fused QKV
 *   rows, the generic C softmax, then ctx = S V (inside the parallel region
 *   oneDNN's sgemm runs on the calling thread);
 * - AVX512: our f32 kernel above with the AVX-512 softmax;
 * - AMX: cpu_attend_amx (bf16 precision), tiles configured once per thread
 *   and released at the end; qkv and out are bf16 for this kernel. */
void cpu_attention_fast(gomps_context_t *ctx, const void *qkv, int32_t batch,
                        const int64_t *offsets, int32_t heads, int32_t head_dim, int cls_only,
                        void *out) {
    const int64_t H = (int64_t)heads * head_dim, H3 = 3 * H;
    const int64_t smax = cpu_attention_work(ctx->model->max_seq, head_dim);
    const int kind = cpu_attention_resolve(ctx->attention_kind, ctx->model->precision, head_dim);
    const int64_t es = cpu_attention_bf16_io(kind) ? 2 : 4; /* bytes per element of qkv, out */
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int64_t tasks = (int64_t)batch * heads;
    /* a row's heads on one thread (its next head known, so prefetched) where
     * there are enough rows to keep the threads busy */
    const int64_t chunk = batch >= 2 * ctx->n_threads ? heads : 1;
#pragma omp parallel num_threads(ctx->n_threads)
    {
        float *s = ctx->scores + (int64_t)omp_get_thread_num() * smax;
        s = (float *)(((uintptr_t)s + 63) & ~(uintptr_t)63);
        if (kind == CPU_ATTENTION_AMX) cpu_amx_tiles_begin();
#pragma omp for schedule(dynamic, chunk)
        for (int64_t task = 0; task < tasks; task++) {
            int32_t b = (int32_t)(task / heads), h = (int32_t)(task % heads);
            int64_t len = offsets[b + 1] - offsets[b];
            int64_t nq = cls_only ? 1 : len;
            const int64_t qe = offsets[b] * H3 + (int64_t)h * head_dim; /* element of Q */
            const int64_t oe = (cls_only ? (int64_t)b : offsets[b]) * H + (int64_t)h * head_dim;
            /* the next task of this chunk runs on this thread: its rows are
             * prefetched while this one computes */
            cpu_att_next next = {0};
            if ((task + 1) % chunk != 0 && task + 1 < tasks) {
                const int32_t b1 = (int32_t)((task + 1) / heads), h1 = (int32_t)((task + 1) % heads);
                next.n = offsets[b1 + 1] - offsets[b1];
                next.nq = cls_only ? 1 : next.n;
                next.q = (const char *)qkv + (offsets[b1] * H3 + (int64_t)h1 * head_dim) * es;
                next.kv = H * es;
            }
            if (cpu_attention_bf16_io(kind)) {
                const uint16_t *q = (const uint16_t *)qkv + qe;
                (kind == CPU_ATTENTION_AMX ? cpu_attend_amx : cpu_attend_avx512bf16)(
                    q, q + H, q + 2 * H, H3, len, nq, scale, (uint16_t *)out + oe, H, s, next);
                continue;
            }
            const float *q = (const float *)qkv + qe, *k = q + H, *v = q + 2 * H;
            float *o = (float *)out + oe;
#ifdef CPU_HAVE_AVX512_ATTENTION
            if (kind == CPU_ATTENTION_AVX512) {
                attend_avx512(q, k, v, H3, len, nq, head_dim, scale, o, H, s, next);
                continue;
            }
#endif
            dnnl_sgemm('N', 'T', nq, len, head_dim, scale, q, H3, k, H3, 0.0f, s, len);
            for (int64_t i = 0; i < nq; i++) cpu_softmax_row_c(s + i * len, len);
            dnnl_sgemm('N', 'N', nq, head_dim, len, 1.0f, s, len, v, H3, 0.0f, o, H);
        }
        if (kind == CPU_ATTENTION_AMX) cpu_amx_tiles_end();
    }
}
