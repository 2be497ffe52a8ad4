/*
 * attention-amx.c: one (row, head) of attention on AMX tiles, head_dim 32,
 * for bf16 precision.
 *
 * Q, K and V come in bf16 (the QKV matmul's output) and the context goes
 * out in bf16 (the attention-output matmul's input). Per task: K is packed so
 * that each block of 16 keys is one B tile (16 rows of dimension pairs x 16 keys: the VNNI layout), V so
 * that each block of 32 keys is two B tiles (16 rows of key pairs x 16
 * dimensions, for dimensions 0-15 and 16-31). Then for each block of 16
 * queries: Q (bf16) is one A tile; S = Q K^T in 16 x 16 f32 tiles stored to a
 * [16, n16] buffer in L1; the f32 softmax of each row of scale * S (max, exp,
 * sum in AVX-512 registers) writes the unnormalised probabilities rounded to
 * bf16, zero past the row's length up to a multiple of 32, and sums the
 * rounded values; context = P V in two 16 x 16 f32 tiles, each row divided by
 * its sum, into the token rows. Keys past n are zero in K and V and excluded
 * from the softmax, so any length 1..512 works.
 *
 * Numerics: Q, K, V (by their producer), P and the context are rounded to
 * bf16 (nearest even, relative error <= 2^-9 each); products are exact in f32
 * and accumulated in f32; the scores, max, exp and sums are f32. Before its
 * final rounding the context is an exact convex combination of the bf16 V rows
 * with the bf16 weights renormalised in f32.
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

#ifdef CPU_X86
/* The AMX kernel's target, and the AVX512-BF16 kernel's (a subset, so the
 * helpers below inline into both). */
#define AMX_TARGET "amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16"
#define BF16_TARGET "avx512f,avx512bw,avx512bf16"

/* Palette 1, all 8 tiles 16 rows x 64 bytes (see cpu_attend_amx for their use). */
typedef struct amx_cfg {
    uint8_t  palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t  rows[16];
} amx_cfg;

/* Static, not built on the stack: gcc 12's _tile_loadconfig tells the compiler
 * it reads 8 bytes, so stores to a local config past those can be dropped. */
static const amx_cfg tile_cfg __attribute__((aligned(64))) = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

__attribute__((target(AMX_TARGET))) void cpu_amx_tiles_begin(void) { _tile_loadconfig(&tile_cfg); }

__attribute__((target(AMX_TARGET))) void cpu_amx_tiles_end(void) { _tile_release(); }

/* gcc 12's _tile_loadd does not tell the compiler that it reads memory: a
 * compiler barrier first keeps the stores that fill the operand before it. */
#define TILE_LOAD(t, base, stride)                 \
    do {                                           \
        __asm__ volatile("" ::: "memory");         \
        _tile_loadd(t, base, stride);            \
    } while (0)

static int64_t r16(int64_t n) { return (n + 15) & ~(int64_t)15; }
static int64_t r32(int64_t n) { return (n + 31) & ~(int64_t)31; }

int64_t cpu_amx_work_bytes(int64_t n) {
    const int64_t n16 = r16(n), n32 = r32(n);
    return 2048 + 64 * n16 + 64 * n32 + 128 * n16 + 128 * n32 + 4096 + 256 + 64;
}

/* 2^t for t <= ~0, as cpu_exp2_avx512 but with a degree-3 polynomial for 2^f
 * (least-squares fit of the relative error on [-1/2, 1/2]: max relative error
 * 7.7e-5, 25x below the bf16 rounding that follows). */
__attribute__((target(BF16_TARGET), always_inline)) static inline __m512 exp2_bf16(__m512 t) {
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(0.05508873923607921f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24260445461856567f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.693276269472336f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999289166583195f));
    return _mm512_scalef_ps(p, n);
}

/* 16 bf16 -> the low halves of 16 dwords. */
__attribute__((target(BF16_TARGET), always_inline)) static inline __m512i bf16_lo32(const uint16_t *x) {
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)x));
}

/* Packs the keys and values of one (row, head), head_dim 32, bf16 rows ld_in
 * elements apart: K into kp [r16(n) / 16][16 dim pairs][16 keys] (the 16 keys
 * of a block, 16 dimension-pair dwords each, transposed: row i of a block
 * holds dimension pair i of every key; an AMX B tile, or 16 dwords for one
 * vdpbf16ps), V into vp [r32(n) / 32][2 halves of 16 dims][16 key pairs][16
 * dims] with each dword (V[2r][d], V[2r + 1][d]); keys past n are zero.
 * Prefetches the rows ahead of use. */
__attribute__((target(BF16_TARGET), always_inline)) static inline void
pack_kv(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t ld_in, int64_t n,
        int64_t nq, uint32_t *kp, uint32_t *vp) {
    const int64_t n16 = r16(n), n32 = r32(n);
    const int64_t ldb = 2 * ld_in; /* bytes between token rows */
    cpu_prefetch_rows_l1(k, ldb, 0, 32, n, 64);
    for (int64_t j0 = 0; j0 < n16; j0 += 16) {
        cpu_prefetch_rows_l1(k, ldb, j0 + 32, j0 + 48, n, 64);
        cpu_prefetch_rows_l2(v, ldb, j0, j0 + 16, n, 64);
        cpu_prefetch_rows_l2(q, ldb, j0, j0 + 16, nq, 64);
        __m512i rows[16];
        for (int j = 0; j < 16; j++)
            rows[j] = j0 + j < n ? _mm512_loadu_si512(k + (j0 + j) * ld_in) : _mm512_setzero_si512();
        cpu_transpose16_avx512(rows);
        for (int r = 0; r < 16; r++) _mm512_storeu_si512(kp + j0 * 16 + r * 16, rows[r]);
    }
    /* V: rows of key pairs, each dword = (V[2r][d], V[2r + 1][d]) */
    for (int64_t j = 0; j < n32; j += 2) {
        uint32_t *dst = vp + (j >> 5) * 512 + ((j & 31) >> 1) * 16;
        __m512i lo0 = _mm512_setzero_si512(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
        if (j < n) {
            lo0 = bf16_lo32(v + j * ld_in);
            lo1 = bf16_lo32(v + j * ld_in + 16);
        }
        if (j + 1 < n) {
            hi0 = _mm512_slli_epi32(bf16_lo32(v + (j + 1) * ld_in), 16);
            hi1 = _mm512_slli_epi32(bf16_lo32(v + (j + 1) * ld_in + 16), 16);
        }
        _mm512_storeu_si512(dst, _mm512_or_si512(lo0, hi0));
        _mm512_storeu_si512(dst + 256, _mm512_or_si512(lo1, hi1));
    }
}

/* The softmax of gr <= 16 rows of scores s (rows ld_s floats apart, n
 * valid): p gets bf16(2^(c (s - max))) per row (rows n32 apart, zero from n
 * to n32), inv 1 / the sum of each row's probabilities before rounding; the
 * 16 rows reduce their maxima and their sums together. */
__attribute__((target(BF16_TARGET), always_inline)) static inline void
softmax_rows(const float *s0, int64_t ld_s, int gr, int64_t n, int64_t n32, float c, uint16_t *p0,
             float *inv) {
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    const __m512 vc = _mm512_set1_ps(c);
    __m512 v[16];
    float mx[16];
    for (int r = 0; r < 16; r++) {
        __m512 m = ninf;
        if (r < gr) {
            const float *s = s0 + r * ld_s;
            int64_t j = 0;
            for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
            if (tail) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(ninf, tail, s + j));
        }
        v[r] = m;
    }
    _mm512_storeu_ps(mx, _mm512_mul_ps(cpu_reduce16_avx512(v, 1), _mm512_set1_ps(-c)));
    for (int r = 0; r < 16; r++) {
        __m512 acc = _mm512_set1_ps(1.0f);
        if (r < gr) {
            const float *s = s0 + r * ld_s;
            uint16_t *p = p0 + r * n32;
            const __m512 b = _mm512_set1_ps(mx[r]);
            acc = _mm512_setzero_ps();
            int64_t j = 0;
            for (; j + 16 <= n; j += 16) {
                __m512 e = exp2_bf16(_mm512_fmadd_ps(_mm512_loadu_ps(s + j), vc, b));
                _mm256_storeu_si256((__m256i *)(p + j), (__m256i)_mm512_cvtneps_pbh(e));
                acc = _mm512_add_ps(acc, e);
            }
            for (; j < n32; j += 16) {
                __m256i h = _mm256_setzero_si256();
                if (j < n) {
                    __m512 e = exp2_bf16(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, s + j), vc, b));
                    e = _mm512_maskz_mov_ps(tail, e);
                    h = (__m256i)_mm512_cvtneps_pbh(e);
                    acc = _mm512_add_ps(acc, e);
                }
                _mm256_storeu_si256((__m256i *)(p + j), h);
            }
        }
        v[r] = acc;
    }
    _mm512_storeu_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), cpu_reduce16_avx512(v, 0)));
}

__attribute__((target(AMX_TARGET))) void cpu_attend_amx(const uint16_t *q, const uint16_t *k,
                                                        const uint16_t *v, int64_t ld_in,
                                                        int64_t n, int64_t nq, float scale,
                                                        uint16_t *o, int64_t ld_out, void *work,
                                                        cpu_att_next next) {
    const int64_t n16 = r16(n), n32 = r32(n);
    char *w = work;
    uint16_t *qb = (uint16_t *)w;           /* [32][32] bf16                 */
    uint32_t *kp = (uint32_t *)(w + 2048);  /* [n16 / 16][16 dim pairs][16 keys] */
    uint32_t *vp = kp + n16 * 16;           /* [n32 / 32][2][16 key pairs][16 dims] */
    float *sb = (float *)(vp + n32 * 16);   /* [32][n16] scores          */
    uint16_t *pb = (uint16_t *)(sb + 32 * n16); /* [2][32][n32] bf16 probabilities */
    float *ob = (float *)(pb + 2 * 32 * n32); /* [32][32] context block    */
    float *inv = ob + 32 * 32;              /* [2][32] 1 / row sums        */

    pack_kv(q, k, v, ld_in, n, nq, kp, vp);

    const int64_t ldb = 2 * ld_in; /* bytes between token rows */
    const float c = scale * 1.44269504088896341f; /* exp(scale s) = 2^(c s) */
    /* Blocks of 32 queries, 2 x 2 tiles: S = Q K^T in C tiles 0-3 from Q
     * tiles 4, 5 and K tiles 6, 7; context = P V in C tiles 0-3 from P tiles
     * 4, 5 and V tiles 6, 7. Software pipeline: the softmax of block i is
     * written while P V of block i - 1 runs, so a tile load never waits for
     * the stores that filled it. */
    const int64_t blocks = (nq + 31) / 32;
    for (int64_t bi = 0; bi <= blocks; bi++) {
        cpu_prefetch_next(next, ldb, bi, blocks + 1, 64);
        if (bi < blocks) {
            const int64_t q0 = bi * 32;
            const int nr = nq - q0 < 32 ? (int)(nq - q0) : 32;
            uint16_t *pbb = pb + (bi & 1) * 32 * n32;
            float *invb = inv + (bi & 1) * 32;
            for (int r = 0; r < 32; r++)
                _mm512_storeu_si512(qb + r * 32,
                                    r < nr ? _mm512_loadu_si512(q + (q0 + r) * ld_in)
                                           : _mm512_setzero_si512());
            TILE_LOAD(4, qb, 64);
            TILE_LOAD(5, qb + 16 * 32, 64);
            float *s1 = sb + 16 * n16;
            int64_t kb = 0;
            for (; kb + 32 <= n16; kb += 32) {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                TILE_LOAD(6, kp + kb * 16, 64);
                TILE_LOAD(7, kp + (kb + 16) * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
                _tile_stored(0, sb + kb, n16 * 4);
                _tile_stored(1, sb + kb + 16, n16 * 4);
                _tile_stored(2, s1 + kb, n16 * 4);
                _tile_stored(3, s1 + kb + 16, n16 * 4);
            }
            if (kb < n16) {
                _tile_zero(0);
                _tile_zero(2);
                TILE_LOAD(6, kp + kb * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(2, 5, 6);
                _tile_stored(0, sb + kb, n16 * 4);
                _tile_stored(2, s1 + kb, n16 * 4);
            }
            /* softmax rows: P = bf16(2^(c (s - max))), zero from n to n32 */
            for (int g = 0; g < nr; g += 16)
                softmax_rows(sb + g * n16, n16, nr - g < 16 ? nr - g : 16, n, n32, c, pbb + g * n32,
                             invb + g);
            /* rows past nq: finite zeros (their context rows are discarded) */
            for (int r = nr; r < 32; r++) memset(pbb + r * n32, 0, (size_t)n32 * 2);
        }
        if (bi > 0) {
            /* context = P V of the previous block */
            const int64_t q0 = (bi - 1) * 32;
            const int nr = nq - q0 < 32 ? (int)(nq - q0) : 32;
            const uint16_t *pbb = pb + ((bi - 1) & 1) * 32 * n32;
            const float *invb = inv + ((bi - 1) & 1) * 32;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int64_t kc = 0; kc < n32; kc += 32) {
                TILE_LOAD(4, pbb + kc, n32 * 2);
                TILE_LOAD(5, pbb + 16 * n32 + kc, n32 * 2);
                TILE_LOAD(6, vp + kc * 16, 64);
                TILE_LOAD(7, vp + kc * 16 + 256, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, ob, 128);
            _tile_stored(1, ob + 16, 128);
            _tile_stored(2, ob + 16 * 32, 128);
            _tile_stored(3, ob + 16 * 32 + 16, 128);
            for (int r = 0; r < nr; r++) {
                const __m512 f = _mm512_set1_ps(invb[r]);
                const __m512 lo = _mm512_mul_ps(_mm512_loadu_ps(ob + r * 32), f);
                const __m512 hi = _mm512_mul_ps(_mm512_loadu_ps(ob + r * 32 + 16), f);
                _mm512_storeu_si512(o + (q0 + r) * ld_out, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
        }
    }
}

/* One (row, head) of attention with AVX512-BF16 dot products (vdpbf16ps),
 * head_dim 32, for bf16 precision on CPUs without AMX; the arguments, the
 * work layout and the numerics are cpu_attend_amx's (the same packing and
 * softmax). Per block of 16 queries: S = Q K^T, 8 queries x 32 keys of f32
 * accumulators, each vdpbf16ps adding one dimension pair of 16 keys; the
 * softmax of the 16 rows into bf16 P; context = P V, 8 queries x 32 dims of
 * accumulators, each vdpbf16ps adding one key pair; each row divided by its
 * sum and rounded to bf16. */
__attribute__((target(BF16_TARGET))) void cpu_attend_avx512bf16(const uint16_t *q, const uint16_t *k,
                                                                const uint16_t *v, int64_t ld_in,
                                                                int64_t n, int64_t nq, float scale,
                                                                uint16_t *o, int64_t ld_out,
                                                                void *work, cpu_att_next next) {
    const int64_t n16 = r16(n), n32 = r32(n);
    char *w = work;
    uint32_t *kp = (uint32_t *)(w + 2048);
    uint32_t *vp = kp + n16 * 16;
    float *sb = (float *)(vp + n32 * 16);       /* [16][n16] scores             */
    uint16_t *pb = (uint16_t *)(sb + 32 * n16); /* [16][n32] bf16 probabilities */
    float *inv = (float *)(pb + 2 * 32 * n32) + 32 * 32; /* [16] 1 / row sums   */
    pack_kv(q, k, v, ld_in, n, nq, kp, vp);
    const float c = scale * 1.44269504088896341f;
    const int64_t ldb = 2 * ld_in, blocks = (nq + 15) / 16;
    for (int64_t q0 = 0; q0 < nq; q0 += 16) {
        cpu_prefetch_next(next, ldb, q0 / 16, blocks, 64);
        const int nb = nq - q0 < 16 ? (int)(nq - q0) : 16;
        for (int i0 = 0; i0 < nb; i0 += 8) {
            const int nr = nb - i0 < 8 ? nb - i0 : 8;
            const uint32_t *qr[8]; /* dimension pairs of each query */
            for (int r = 0; r < 8; r++) qr[r] = (const uint32_t *)(q + (q0 + i0 + (r < nr ? r : 0)) * ld_in);
            for (int64_t kb = 0; kb < n16; kb += 32) {
                const int two = kb + 16 < n16;
                __m512 a[8][2];
                for (int r = 0; r < 8; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
                for (int i = 0; i < 16; i++) {
                    const __m512bh k0 = (__m512bh)_mm512_loadu_si512(kp + kb * 16 + i * 16);
                    const __m512bh k1 =
                        two ? (__m512bh)_mm512_loadu_si512(kp + (kb + 16) * 16 + i * 16) : k0;
                    for (int r = 0; r < 8; r++) {
                        const __m512bh qb = (__m512bh)_mm512_set1_epi32((int)qr[r][i]);
                        a[r][0] = _mm512_dpbf16_ps(a[r][0], qb, k0);
                        a[r][1] = _mm512_dpbf16_ps(a[r][1], qb, k1);
                    }
                }
                for (int r = 0; r < nr; r++) {
                    _mm512_storeu_ps(sb + (i0 + r) * n16 + kb, a[r][0]);
                    if (two) _mm512_storeu_ps(sb + (i0 + r) * n16 + kb + 16, a[r][1]);
                }
            }
        }
        softmax_rows(sb, n16, nb, n, n32, c, pb, inv);
        for (int i0 = 0; i0 < nb; i0 += 8) {
            const int nr = nb - i0 < 8 ? nb - i0 : 8;
            const uint32_t *pr[8]; /* key pairs of each query's probabilities */
            for (int r = 0; r < 8; r++) pr[r] = (const uint32_t *)(pb + (i0 + (r < nr ? r : 0)) * n32);
            __m512 a[8][2];
            for (int r = 0; r < 8; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
            for (int64_t jp = 0; jp < n32 / 2; jp++) {
                const uint32_t *vv = vp + (jp >> 4) * 512 + (jp & 15) * 16;
                const __m512bh v0 = (__m512bh)_mm512_loadu_si512(vv);
                const __m512bh v1 = (__m512bh)_mm512_loadu_si512(vv + 256);
                for (int r = 0; r < 8; r++) {
                    const __m512bh pp = (__m512bh)_mm512_set1_epi32((int)pr[r][jp]);
                    a[r][0] = _mm512_dpbf16_ps(a[r][0], pp, v0);
                    a[r][1] = _mm512_dpbf16_ps(a[r][1], pp, v1);
                }
            }
            for (int r = 0; r < nr; r++) {
                const __m512 f = _mm512_set1_ps(inv[i0 + r]);
                _mm512_storeu_si512(o + (q0 + i0 + r) * ld_out,
                                    (__m512i)_mm512_cvtne2ps_pbh(_mm512_mul_ps(a[r][1], f),
                                                                 _mm512_mul_ps(a[r][0], f)));
            }
        }
    }
}

#else /* not x86-64 with GCC: no AMX kernel */

void cpu_amx_tiles_begin(void) {}
void cpu_amx_tiles_end(void) {}
int64_t cpu_amx_work_bytes(int64_t n) { return 0; }
void cpu_attend_amx(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t ld_in,
                    int64_t n, int64_t nq, float scale, uint16_t *o, int64_t ld_out, void *work,
                    cpu_att_next next) {}
void cpu_attend_avx512bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t ld_in,
                           int64_t n, int64_t nq, float scale, uint16_t *o, int64_t ld_out,
                           void *work, cpu_att_next next) {}

#endif
