//go:build cgo

/*
 * gomps-wfile.c: see gomps-wfile.h. Checks follow the "Reading rules" of
 * weights/FORMAT.md in order; nothing is allocated from a size in the file
 * before the size has been bounded by the file's real size.
 *
 * (The build constraint above is for the go tool.)
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE   /* madvise on glibc  */
#define _DARWIN_C_SOURCE  /* madvise on darwin */
#include "gomps-wfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define WFILE_CRC_SSE42 1
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define WFILE_CRC_ARM 1
#endif

#define HEADER_FIXED 256u
#define TENSOR_ENTRY 128u
#define HEADER_MAX (1u << 20)
#define TOKENIZER_MAX (64ull << 20)

/* ---- CRC-32C (reflected polynomial 0x82F63B78) ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xffu];
}

/* slice-by-8 on the inverted state; byte order independent */
static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&crc_once, crc_init);
    while (n >= 8) {
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= crc;
        crc = crc_tab[7][lo & 0xffu] ^ crc_tab[6][(lo >> 8) & 0xffu] ^ crc_tab[5][(lo >> 16) & 0xffu] ^
              crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xffu] ^ crc_tab[2][(hi >> 8) & 0xffu] ^
              crc_tab[1][(hi >> 16) & 0xffu] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xffu];
    return crc;
}

#if WFILE_CRC_SSE42
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* x86-64 is little-endian, as the CRC wants */
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#elif WFILE_CRC_ARM
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* AArch64 targets here are little-endian */
        crc = __crc32cd(crc, v);
        p += 8;
        n -= 8;
    }
    while (n--) crc = __crc32cb(crc, *p++);
    return crc;
}
#endif

uint32_t gomps_wfile_crc32c_portable(uint32_t crc, const void *data, size_t n) {
    return ~crc_table(~crc, data, n);
}

uint32_t gomps_wfile_crc32c(uint32_t crc, const void *data, size_t n) {
#if WFILE_CRC_SSE42
    if (__builtin_cpu_supports("sse4.2")) return ~crc_hw(~crc, data, n);
#elif WFILE_CRC_ARM
    return ~crc_hw(~crc, data, n);
#endif
    return ~crc_table(~crc, data, n);
}

/* ---- SHA-256 (FIPS 180-4) ---- */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void gomps_wfile_sha256(const void *data, size_t n, uint8_t out[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t left = n;
    while (left >= 64) {
        sha_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t tail[128] = {0};
    if (left) memcpy(tail, p, left);
    tail[left] = 0x80;
    const size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    const uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha_block(h, tail);
    if (tl == 128) sha_block(h, tail + 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---- little-endian field access ---- */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static double rdf64(const uint8_t *p) {
    uint64_t u = rd64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}
static uint64_t align_up(uint64_t x) { return (x + (GOMPS_WFILE_ALIGN - 1)) / GOMPS_WFILE_ALIGN * GOMPS_WFILE_ALIGN; }

/* strict UTF-8: no overlong forms, surrogates or code points above U+10FFFF */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len > n - i) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
} reader;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static gomps_status fail(const reader *r, gomps_status st, const char *fmt, ...) {
    if (r->err && r->errlen) {
        int n = snprintf(r->err, r->errlen, "weights: %s: ", r->path);
        if (n >= 0 && (size_t)n < r->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

/* expected name and shape of tensor i for config c */
static void expect(const gomps_wfile_config *c, uint32_t i, char name[65], uint32_t *ndim, uint64_t shape[2]) {
    const uint64_t H = c->hidden_size, I = c->intermediate_size;
    const uint32_t L = c->num_layers;
    if (i < GOMPS_WT_LAYER0) {
        static const char *const names[] = {"embeddings.word", "embeddings.position", "embeddings.token_type",
                                            "embeddings.ln.gamma", "embeddings.ln.beta"};
        const uint64_t dims[5][2] = {{c->vocab_size, H}, {c->max_position, H}, {c->type_vocab_size, H}, {H, 0}, {H, 0}};
        snprintf(name, 65, "%s", names[i]);
        shape[0] = dims[i][0];
        shape[1] = dims[i][1];
    } else if (i < GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * L) {
        const uint32_t l = (i - GOMPS_WT_LAYER0) / GOMPS_WT_PER_LAYER, k = (i - GOMPS_WT_LAYER0) % GOMPS_WT_PER_LAYER;
        static const char *const names[] = {"qkv.weight",      "qkv.bias",      "attn_out.weight", "attn_out.bias",
                                            "attn_ln.gamma",   "attn_ln.beta",  "ffn_up.weight",   "ffn_up.bias",
                                            "ffn_down.weight", "ffn_down.bias", "ffn_ln.gamma",    "ffn_ln.beta"};
        /* rows, cols (cols 0 = 1-D) */
        const uint64_t dims[12][2] = {{3 * H, H}, {3 * H, 0}, {H, H}, {H, 0}, {H, 0}, {H, 0},
                                      {I, H},     {I, 0},     {H, I}, {H, 0}, {H, 0}, {H, 0}};
        snprintf(name, 65, "layer.%u.%s", l, names[k]);
        shape[0] = dims[k][0];
        shape[1] = dims[k][1];
    } else {
        const uint32_t k = i - GOMPS_WT_LAYER0 - GOMPS_WT_PER_LAYER * L;
        static const char *const names[] = {"pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias"};
        const uint64_t dims[4][2] = {{H, H}, {H, 0}, {1, H}, {1, 0}};
        snprintf(name, 65, "%s", names[k]);
        shape[0] = dims[k][0];
        shape[1] = dims[k][1];
    }
    *ndim = shape[1] ? 2 : 1;
}

static gomps_status validate(const reader *r, uint32_t flags, gomps_wfile *f) {
    const uint8_t *b = f->base;
    const uint64_t fsize = f->size;
    gomps_wfile_config *c = &f->cfg;

    if (memcmp(b, "GOMPSWTS", 8) != 0) return fail(r, GOMPS_ERR_FORMAT, "magic: not \"GOMPSWTS\" (not a gomps weights file)");
    const uint32_t version = rd32(b + 8);
    if (version != 1) return fail(r, GOMPS_ERR_FORMAT, "version: %u, this reader knows only 1", version);
    const uint32_t header_size = rd32(b + 12);
    const uint64_t hmax = fsize < HEADER_MAX ? fsize : HEADER_MAX;
    if (header_size < HEADER_FIXED || header_size > hmax)
        return fail(r, GOMPS_ERR_FORMAT, "header_size: %u, outside [256, %llu] (1 MiB or the file size)", header_size,
                    (unsigned long long)hmax);
    const uint32_t n_tensors = rd32(b + 36);
    if ((uint64_t)header_size != HEADER_FIXED + (uint64_t)TENSOR_ENTRY * n_tensors)
        return fail(r, GOMPS_ERR_FORMAT, "header_size: %u, not 256 + 128 * n_tensors (%u)", header_size, n_tensors);
    {
        const uint8_t zero[4] = {0, 0, 0, 0};
        uint32_t crc = gomps_wfile_crc32c(0, b, 16);
        crc = gomps_wfile_crc32c(crc, zero, 4);
        crc = gomps_wfile_crc32c(crc, b + 20, header_size - 20);
        if (crc != rd32(b + 16))
            return fail(r, GOMPS_ERR_FORMAT, "header_crc32c: stored 0x%08x, computed 0x%08x (header corrupt)",
                        rd32(b + 16), crc);
    }
    if (rd32(b + 20) != GOMPS_WFILE_ALIGN) return fail(r, GOMPS_ERR_FORMAT, "alignment: %u, not 16384", rd32(b + 20));
    if (rd64(b + 24) != fsize)
        return fail(r, GOMPS_ERR_FORMAT, "file_size: header says %llu bytes, the file has %llu (truncated or extended)",
                    (unsigned long long)rd64(b + 24), (unsigned long long)fsize);
    c->dtype = rd32(b + 32);
    if (c->dtype == 2) return fail(r, GOMPS_ERR_FORMAT, "dtype: 2 (BF16) is reserved and rejected in version 1");
    if (c->dtype > 1) return fail(r, GOMPS_ERR_FORMAT, "dtype: %u, not 0 (F32) or 1 (F16)", c->dtype);
    c->arch = rd32(b + 40);
    if (c->arch != 1) return fail(r, GOMPS_ERR_FORMAT, "arch: %u, not 1 (BertForSequenceClassification)", c->arch);

    c->vocab_size = rd32(b + 44);
    c->hidden_size = rd32(b + 48);
    c->num_layers = rd32(b + 52);
    c->num_heads = rd32(b + 56);
    c->intermediate_size = rd32(b + 60);
    c->max_position = rd32(b + 64);
    c->type_vocab_size = rd32(b + 68);
    c->pad_token_id = rd32(b + 72);
    c->layer_norm_eps = rdf64(b + 80);
    const struct {
        const char *name;
        uint32_t v, lo, hi;
    } ranges[] = {
        {"vocab_size", c->vocab_size, 1, 1000000},
        {"hidden_size", c->hidden_size, 1, 8192},
        {"num_layers", c->num_layers, 1, 128},
        {"num_heads", c->num_heads, 1, 256},
        {"intermediate_size", c->intermediate_size, 1, 65536},
        {"max_position", c->max_position, 3, 65536},
        {"type_vocab_size", c->type_vocab_size, 2, 16},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].v < ranges[i].lo || ranges[i].v > ranges[i].hi)
            return fail(r, GOMPS_ERR_FORMAT, "%s: %u, outside [%u, %u]", ranges[i].name, ranges[i].v, ranges[i].lo,
                        ranges[i].hi);
    if (c->hidden_size % c->num_heads != 0)
        return fail(r, GOMPS_ERR_FORMAT, "hidden_size: %u, not a multiple of num_heads %u", c->hidden_size,
                    c->num_heads);
    if (c->pad_token_id >= c->vocab_size)
        return fail(r, GOMPS_ERR_FORMAT, "pad_token_id: %u, not below vocab_size %u", c->pad_token_id, c->vocab_size);
    if (rd32(b + 76) != 0) return fail(r, GOMPS_ERR_FORMAT, "reserved field at offset 76 is not 0");
    if (!isfinite(c->layer_norm_eps) || !(c->layer_norm_eps > 0) || !(c->layer_norm_eps < 1))
        return fail(r, GOMPS_ERR_FORMAT, "layer_norm_eps: %g, not finite in (0, 1)", c->layer_norm_eps);

    const uint64_t data_start = align_up(header_size);
    const uint64_t tok_off = rd64(b + 88), tok_size = rd64(b + 96);
    if (tok_off != data_start)
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer_offset: %llu, not data_start = align(header_size) = %llu",
                    (unsigned long long)tok_off, (unsigned long long)data_start);
    if (tok_size < 1 || tok_size > TOKENIZER_MAX)
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer_size: %llu, outside [1, 64 MiB]", (unsigned long long)tok_size);
    const uint64_t tok_end = tok_off + align_up(tok_size);
    if (tok_end > fsize)
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer slot [%llu, %llu) runs past the end of the file (%llu bytes)",
                    (unsigned long long)tok_off, (unsigned long long)tok_end, (unsigned long long)fsize);

    {
        const uint8_t *nm = b + 168;
        const uint8_t *nul = memchr(nm, 0, 80);
        const size_t nl = nul ? (size_t)(nul - nm) : 80;
        if (!all_zero(nm + nl, 80 - nl)) return fail(r, GOMPS_ERR_FORMAT, "name: bytes after the first NUL are not all NUL");
        if (!utf8_valid(nm, nl)) return fail(r, GOMPS_ERR_FORMAT, "name: not valid UTF-8");
        memcpy(c->name, nm, nl);
        c->name[nl] = 0;
    }
    memcpy(c->source_sha256, b + 136, 32);
    if (!all_zero(b + 248, 8)) return fail(r, GOMPS_ERR_FORMAT, "reserved bytes at offset 248 are not 0");

    const uint64_t want_n = (uint64_t)GOMPS_WT_PER_LAYER * c->num_layers + GOMPS_WT_FIXED;
    if (n_tensors != want_n)
        return fail(r, GOMPS_ERR_FORMAT, "n_tensors: %u, not 12 * num_layers + 9 = %llu", n_tensors,
                    (unsigned long long)want_n);
    /* header_size <= data_start = tok_off <= fsize here */
    if (!all_zero(b + header_size, data_start - header_size))
        return fail(r, GOMPS_ERR_FORMAT, "padding after the header is not zero");

    /* n_tensors is bounded by header_size <= file size here. */
    f->tensors = calloc(n_tensors, sizeof *f->tensors);
    if (!f->tensors) return fail(r, GOMPS_ERR_OOM, "out of memory for %u tensor entries", n_tensors);
    f->n_tensors = n_tensors;

    const uint64_t elsize = c->dtype == GOMPS_WFILE_DTYPE_F32 ? 4 : 2;
    uint64_t prev_end = tok_end;
    for (uint32_t i = 0; i < n_tensors; i++) {
        const uint8_t *e = b + HEADER_FIXED + (size_t)TENSOR_ENTRY * i;
        gomps_wfile_tensor *t = &f->tensors[i];
        char want[65];
        uint32_t want_ndim;
        uint64_t want_shape[2];
        expect(c, i, want, &want_ndim, want_shape);
        const uint8_t *enul = memchr(e, 0, 64);
        const size_t gl = enul ? (size_t)(enul - e) : 64;
        if (gl != strlen(want) || memcmp(e, want, gl) != 0 || !all_zero(e + gl, 64 - gl)) {
            char got[65];
            for (size_t k = 0; k < gl; k++) got[k] = e[k] >= 0x20 && e[k] <= 0x7e ? (char)e[k] : '?';
            got[gl] = 0;
            return fail(r, GOMPS_ERR_FORMAT, "tensor %u: name \"%s\", expected \"%s\"", i, got, want);
        }
        memcpy(t->name, want, sizeof t->name);
        t->ndim = rd32(e + 64);
        if (t->ndim != want_ndim)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": ndim %u, expected %u", want, t->ndim, want_ndim);
        t->shape[0] = rd64(e + 72);
        t->shape[1] = rd64(e + 80);
        if (t->shape[0] != want_shape[0] || t->shape[1] != want_shape[1])
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": shape {%llu, %llu}, expected {%llu, %llu} from the config",
                        want, (unsigned long long)t->shape[0], (unsigned long long)t->shape[1],
                        (unsigned long long)want_shape[0], (unsigned long long)want_shape[1]);
        t->offset = rd64(e + 88);
        if (t->offset % GOMPS_WFILE_ALIGN != 0)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": offset %llu is not a multiple of 16384", want,
                        (unsigned long long)t->offset);
        if (t->offset != prev_end)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": offset %llu is not the end of the previous slot (%llu)",
                        want, (unsigned long long)t->offset, (unsigned long long)prev_end);
        /* the shape equals the config's, whose ranges keep this product far below 2^64 */
        t->elems = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
        t->size = rd64(e + 96);
        if (t->size != t->elems * elsize)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": size %llu, expected %llu elements * %llu bytes", want,
                        (unsigned long long)t->size, (unsigned long long)t->elems, (unsigned long long)elsize);
        t->slot = align_up(t->size);
        if (t->slot > fsize || t->offset > fsize - t->slot)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": slot [%llu, %llu) runs past the end of the file (%llu bytes)",
                        want, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->slot),
                        (unsigned long long)fsize);
        if (rd32(e + 68) != 0 || !all_zero(e + 108, 20))
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": reserved fields are not zero", want);
        prev_end = t->offset + t->slot;
    }
    if (prev_end != fsize)
        return fail(r, GOMPS_ERR_FORMAT, "file_size: %llu, but the last slot ends at %llu", (unsigned long long)fsize,
                    (unsigned long long)prev_end);

    /* Checksums and slot padding, before any byte is used. */
    const uint8_t *tok = b + tok_off;
    if (!all_zero(tok + tok_size, align_up(tok_size) - tok_size))
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer slot padding is not zero");
    if (flags & GOMPS_WFILE_VERIFY_TOKENIZER) {
        uint8_t sha[32];
        gomps_wfile_sha256(tok, (size_t)tok_size, sha);
        if (memcmp(sha, b + 104, 32) != 0)
            return fail(r, GOMPS_ERR_FORMAT, "tokenizer_sha256: does not match the embedded tokenizer.json (corrupt)");
    }
    f->tokenizer = tok;
    f->tokenizer_size = tok_size;
    for (uint32_t i = 0; i < n_tensors; i++) {
        gomps_wfile_tensor *t = &f->tensors[i];
        const uint8_t *e = b + HEADER_FIXED + (size_t)TENSOR_ENTRY * i;
        const uint8_t *d = b + t->offset;
        const uint32_t crc = gomps_wfile_crc32c(0, d, (size_t)t->size);
        if (crc != rd32(e + 104))
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": crc32c: stored 0x%08x, computed 0x%08x (data corrupt)",
                        t->name, rd32(e + 104), crc);
        if (!all_zero(d + t->size, (size_t)(t->slot - t->size)))
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": slot padding is not zero", t->name);
        t->data = d;
    }
    return GOMPS_OK;
}

gomps_status gomps_wfile_open(const char *path, uint32_t flags, gomps_wfile *f, char *err, size_t errlen) {
    reader r = {path ? path : "(null)", err, errlen};
    if (err && errlen) err[0] = 0;
    if (!f) return fail(&r, GOMPS_ERR_INVALID_ARG, "no output");
    memset(f, 0, sizeof *f);
    if (!path) return fail(&r, GOMPS_ERR_INVALID_ARG, "no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(&r, GOMPS_ERR_IO, "open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(&r, GOMPS_ERR_IO, "stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(&r, GOMPS_ERR_IO, "not a regular file");
    }
    if (st.st_size < (off_t)HEADER_FIXED) {
        close(fd);
        return fail(&r, GOMPS_ERR_FORMAT,
                    "file is %lld bytes, shorter than the 256-byte preamble (truncated or not a gomps weights file)",
                    (long long)st.st_size);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return fail(&r, GOMPS_ERR_FORMAT, "file is too large to map (%lld bytes)", (long long)st.st_size);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) return fail(&r, GOMPS_ERR_IO, "mmap: %s", strerror(e));
    f->base = base;
    f->size = (size_t)st.st_size;
    gomps_status s = validate(&r, flags, f);
    if (s != GOMPS_OK) gomps_wfile_close(f);
    return s;
}

void gomps_wfile_release(const gomps_wfile *f) {
#ifdef MADV_DONTNEED
    if (f && f->base) madvise(f->base, f->size, MADV_DONTNEED);
#else
    (void)f;
#endif
}

void gomps_wfile_close(gomps_wfile *f) {
    if (!f) return;
    if (f->base) munmap(f->base, f->size);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}
