/*
 * model-file.c: maps a native weights file (weights/FORMAT.md, version 1) and
 * validates every rule before a byte of it is used. A bad file is an error
 * naming the file, the field or tensor and the rule; never a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define CPU_HAVE_SSE42_PATH 1
#endif

/* CRC-32C ------------------------------------------------------------------*/

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc32c_portable(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&crc_once, crc_table_init);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
              crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
              crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
              crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#ifdef CPU_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                                size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

/* GOMPS_CPU_CRC=portable forces the table path (tests compare the two). */
uint32_t cpu_crc32c(uint32_t crc, const void *data, size_t n) {
    crc = ~crc;
#ifdef CPU_HAVE_SSE42_PATH
    const char *force = getenv("GOMPS_CPU_CRC");
    if (__builtin_cpu_supports("sse4.2") && !(force && strcmp(force, "portable") == 0))
        return ~crc32c_sse42(crc, data, n);
#endif
    return ~crc32c_portable(crc, data, n);
}

/* SHA-256 (FIPS 180-4) -----------------------------------------------------*/

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void cpu_sha256(const void *data, size_t n, uint8_t out[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t left = n;
    while (left >= 64) {
        sha_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
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

/* F16 ----------------------------------------------------------------------*/

void cpu_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = src[i];
        uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
        if (exp == 0x1f) {
            bits = sign | 0x7f800000u | (man << 13);
        } else if (exp != 0) {
            bits = sign | ((exp + 112) << 23) | (man << 13);
        } else if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400u) == 0);
            bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
        }
        memcpy(&dst[i], &bits, 4);
    }
}

/* Validation ---------------------------------------------------------------*/

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static uint64_t align_up(uint64_t x) { return (x + CPU_FILE_ALIGN - 1) / CPU_FILE_ALIGN * CPU_FILE_ALIGN; }

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* Expected name and shape of tensor index i. */
static void expected_tensor(const cpu_file *f, uint32_t i, char name[64], uint32_t *ndim,
                            uint64_t shape[2]) {
    uint64_t H = (uint64_t)f->hidden_size, I = (uint64_t)f->intermediate_size;
    uint32_t L = (uint32_t)f->num_layers;
    shape[1] = 0;
    *ndim = 1;
    if (i < 5) {
        static const char *names[5] = {"embeddings.word", "embeddings.position",
                                       "embeddings.token_type", "embeddings.ln.gamma",
                                       "embeddings.ln.beta"};
        snprintf(name, 64, "%s", names[i]);
        uint64_t rows[3] = {(uint64_t)f->vocab_size, (uint64_t)f->max_position,
                            (uint64_t)f->type_vocab_size};
        if (i < 3) { *ndim = 2; shape[0] = rows[i]; shape[1] = H; }
        else shape[0] = H;
        return;
    }
    if (i < 5 + 12 * L) {
        uint32_t l = (i - 5) / 12, k = (i - 5) % 12;
        static const char *sfx[12] = {"qkv.weight",     "qkv.bias",       "attn_out.weight",
                                      "attn_out.bias",  "attn_ln.gamma",  "attn_ln.beta",
                                      "ffn_up.weight",  "ffn_up.bias",    "ffn_down.weight",
                                      "ffn_down.bias",  "ffn_ln.gamma",   "ffn_ln.beta"};
        snprintf(name, 64, "layer.%u.%s", l, sfx[k]);
        switch (k) {
        case 0: *ndim = 2; shape[0] = 3 * H; shape[1] = H; break;
        case 1: shape[0] = 3 * H; break;
        case 2: *ndim = 2; shape[0] = H; shape[1] = H; break;
        case 6: *ndim = 2; shape[0] = I; shape[1] = H; break;
        case 7: shape[0] = I; break;
        case 8: *ndim = 2; shape[0] = H; shape[1] = I; break;
        default: shape[0] = H; break;
        }
        return;
    }
    uint32_t k = i - 5 - 12 * L;
    static const char *names[4] = {"pooler.weight", "pooler.bias", "classifier.weight",
                                   "classifier.bias"};
    snprintf(name, 64, "%s", names[k]);
    switch (k) {
    case 0: *ndim = 2; shape[0] = H; shape[1] = H; break;
    case 1: shape[0] = H; break;
    case 2: *ndim = 2; shape[0] = 1; shape[1] = H; break;
    default: shape[0] = 1; break;
    }
}

#define FAIL(...) do { st = cpu_init_errorf(GOMPS_ERR_FORMAT, __VA_ARGS__); goto fail; } while (0)

gomps_status cpu_file_open(const char *path, cpu_file *f) {
    gomps_status st;
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cpu_init_errorf(GOMPS_ERR_IO, "cpu: %s: open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cpu_init_errorf(GOMPS_ERR_IO, "cpu: %s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return cpu_init_errorf(GOMPS_ERR_IO, "cpu: %s: not a regular file", path);
    }
    uint64_t real = (uint64_t)sb.st_size;
    if (real < CPU_FILE_PREAMBLE) {
        close(fd);
        return cpu_init_errorf(GOMPS_ERR_FORMAT,
                               "cpu: %s: file is %llu bytes, less than the 256-byte preamble "
                               "(truncated or not a gomps weights file)",
                               path, (unsigned long long)real);
    }
    if (real > (uint64_t)SIZE_MAX) {
        close(fd);
        return cpu_init_errorf(GOMPS_ERR_FORMAT, "cpu: %s: file too large to map", path);
    }
    void *map = mmap(NULL, (size_t)real, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return cpu_init_errorf(GOMPS_ERR_IO, "cpu: %s: mmap: %s", path, strerror(e));
    f->map = map;
    f->map_size = (size_t)real;
    const uint8_t *b = map;

    if (memcmp(b, "GOMPSWTS", 8) != 0)
        FAIL("cpu: %s: magic: not \"GOMPSWTS\" (not a gomps weights file)", path);
    uint32_t version = rd32(b + 8);
    if (version != 1)
        FAIL("cpu: %s: version: %u, this reader knows only version 1", path, version);
    uint32_t header_size = rd32(b + 12);
    uint64_t hmax = real < (1u << 20) ? real : (1u << 20);
    if (header_size < CPU_FILE_PREAMBLE || header_size > hmax)
        FAIL("cpu: %s: header_size: %u is outside [256, %llu] (1 MiB or the file size)", path,
             header_size, (unsigned long long)hmax);
    uint32_t n_tensors = rd32(b + 36);
    if ((uint64_t)header_size != CPU_FILE_PREAMBLE + (uint64_t)CPU_FILE_ENTRY * n_tensors)
        FAIL("cpu: %s: header_size: %u != 256 + 128 * n_tensors (%u)", path, header_size,
             n_tensors);
    {
        uint32_t want = rd32(b + 16);
        uint8_t zero[4] = {0};
        uint32_t c = cpu_crc32c(0, b, 16);
        /* continue the CRC over the zeroed field and the rest */
        c = cpu_crc32c(c, zero, 4);
        c = cpu_crc32c(c, b + 20, header_size - 20);
        if (c != want)
            FAIL("cpu: %s: header_crc32c: stored 0x%08x, computed 0x%08x (header corrupt)", path,
                 want, c);
    }
    if (rd32(b + 20) != CPU_FILE_ALIGN)
        FAIL("cpu: %s: alignment: %u, must be 16384", path, rd32(b + 20));
    if (rd64(b + 24) != real)
        FAIL("cpu: %s: file_size: header says %llu bytes, the file has %llu (truncated or "
             "extended)",
             path, (unsigned long long)rd64(b + 24), (unsigned long long)real);
    f->dtype = rd32(b + 32);
    if (f->dtype > 1)
        FAIL("cpu: %s: dtype: %u, must be 0 (F32) or 1 (F16)%s", path, f->dtype,
             f->dtype == 2 ? "; BF16 is reserved in version 1" : "");
    if (rd32(b + 40) != 1)
        FAIL("cpu: %s: arch: %u, must be 1 (BertForSequenceClassification)", path, rd32(b + 40));
    struct { const char *name; uint32_t off, lo, hi; } cfg[] = {
        {"vocab_size", 44, 1, 1000000},      {"hidden_size", 48, 1, 8192},
        {"num_layers", 52, 1, 128},          {"num_heads", 56, 1, 256},
        {"intermediate_size", 60, 1, 65536}, {"max_position", 64, 3, 65536},
        {"type_vocab_size", 68, 2, 16},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        uint32_t v = rd32(b + cfg[i].off);
        if (v < cfg[i].lo || v > cfg[i].hi)
            FAIL("cpu: %s: %s: %u is outside [%u, %u]", path, cfg[i].name, v, cfg[i].lo,
                 cfg[i].hi);
    }
    f->vocab_size = (int32_t)rd32(b + 44);
    f->hidden_size = (int32_t)rd32(b + 48);
    f->num_layers = (int32_t)rd32(b + 52);
    f->num_heads = (int32_t)rd32(b + 56);
    f->intermediate_size = (int32_t)rd32(b + 60);
    f->max_position = (int32_t)rd32(b + 64);
    f->type_vocab_size = (int32_t)rd32(b + 68);
    if (f->hidden_size % f->num_heads != 0)
        FAIL("cpu: %s: hidden_size: %d is not a multiple of num_heads %d", path, f->hidden_size,
             f->num_heads);
    f->pad_token_id = (int32_t)rd32(b + 72);
    if (rd32(b + 72) >= (uint32_t)f->vocab_size)
        FAIL("cpu: %s: pad_token_id: %u is not below vocab_size %d", path, rd32(b + 72),
             f->vocab_size);
    if (rd32(b + 76) != 0) FAIL("cpu: %s: reserved field at offset 76 is not zero", path);
    memcpy(&f->layer_norm_eps, b + 80, 8);
    if (!isfinite(f->layer_norm_eps) || !(f->layer_norm_eps > 0) || !(f->layer_norm_eps < 1))
        FAIL("cpu: %s: layer_norm_eps: %g must be finite, > 0 and < 1", path, f->layer_norm_eps);
    uint64_t data_start = align_up(header_size);
    uint64_t tok_off = rd64(b + 88), tok_size = rd64(b + 96);
    if (tok_off != data_start)
        FAIL("cpu: %s: tokenizer_offset: %llu != align(header_size) = %llu", path,
             (unsigned long long)tok_off, (unsigned long long)data_start);
    if (tok_size < 1 || tok_size > (64u << 20))
        FAIL("cpu: %s: tokenizer_size: %llu is outside [1, 64 MiB]", path,
             (unsigned long long)tok_size);
    uint64_t slot_end = tok_off + align_up(tok_size);
    if (slot_end > real)
        FAIL("cpu: %s: tokenizer slot [%llu, %llu) runs past the end of the file (%llu bytes)",
             path, (unsigned long long)tok_off, (unsigned long long)slot_end,
             (unsigned long long)real);
    {
        const uint8_t *name = b + 168;
        size_t nl = strnlen((const char *)name, 80);
        if (!all_zero(name + nl, 80 - nl))
            FAIL("cpu: %s: name: bytes after the first NUL are not all NUL", path);
        if (!utf8_valid(name, nl)) FAIL("cpu: %s: name: not valid UTF-8", path);
        memcpy(f->name, name, nl);
        f->name[nl] = 0;
    }
    if (!all_zero(b + 248, 8)) FAIL("cpu: %s: reserved bytes 248..255 are not zero", path);
    uint32_t want_n = CPU_TENSORS_PER_LAYER * (uint32_t)f->num_layers + CPU_TENSORS_FIXED;
    if (n_tensors != want_n)
        FAIL("cpu: %s: n_tensors: %u, expected 12 * num_layers + 9 = %u", path, n_tensors,
             want_n);
    if (!all_zero(b + header_size, data_start - header_size))
        FAIL("cpu: %s: padding after the header is not zero", path);
    if (!all_zero(b + tok_off + tok_size, align_up(tok_size) - tok_size))
        FAIL("cpu: %s: tokenizer slot padding is not zero", path);
    {
        uint8_t sha[32];
        cpu_sha256(b + tok_off, (size_t)tok_size, sha);
        if (memcmp(sha, b + 104, 32) != 0)
            FAIL("cpu: %s: tokenizer_sha256: does not match the embedded tokenizer.json "
                 "(corrupt)",
                 path);
    }
    f->n_tensors = n_tensors;
    f->tensor_data = calloc(n_tensors, sizeof *f->tensor_data);
    f->tensor_elems = calloc(n_tensors, sizeof *f->tensor_elems);
    if (!f->tensor_data || !f->tensor_elems) {
        st = cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory for the tensor table", path);
        goto fail;
    }
    uint64_t esize = f->dtype == 0 ? 4 : 2;
    uint64_t prev_end = slot_end;
    for (uint32_t i = 0; i < n_tensors; i++) {
        const uint8_t *e = b + CPU_FILE_PREAMBLE + (size_t)i * CPU_FILE_ENTRY;
        char want[64];
        uint32_t want_ndim;
        uint64_t want_shape[2];
        expected_tensor(f, i, want, &want_ndim, want_shape);
        char got[65];
        memcpy(got, e, 64);
        got[64] = 0;
        size_t gl = strnlen(got, 64);
        if (strcmp(got, want) != 0 || !all_zero(e + gl, 64 - gl)) {
            for (size_t k = 0; k < gl; k++)
                if (got[k] < 0x20 || got[k] > 0x7e) got[k] = '?';
            FAIL("cpu: %s: tensor %u: name \"%s\", expected \"%s\"", path, i, got, want);
        }
        uint32_t ndim = rd32(e + 64);
        if (ndim != want_ndim)
            FAIL("cpu: %s: tensor \"%s\": ndim %u, expected %u", path, want, ndim, want_ndim);
        uint64_t s0 = rd64(e + 72), s1 = rd64(e + 80);
        if (s0 != want_shape[0] || s1 != want_shape[1])
            FAIL("cpu: %s: tensor \"%s\": shape {%llu, %llu}, expected {%llu, %llu} from the "
                 "config",
                 path, want, (unsigned long long)s0, (unsigned long long)s1,
                 (unsigned long long)want_shape[0], (unsigned long long)want_shape[1]);
        uint64_t off = rd64(e + 88), size = rd64(e + 96);
        if (off % CPU_FILE_ALIGN != 0)
            FAIL("cpu: %s: tensor \"%s\": offset %llu is not a multiple of 16384", path, want,
                 (unsigned long long)off);
        if (off != prev_end)
            FAIL("cpu: %s: tensor \"%s\": offset %llu is not the end of the previous slot "
                 "(%llu)",
                 path, want, (unsigned long long)off, (unsigned long long)prev_end);
        /* the shape is bounded by the config ranges, so no overflow here */
        uint64_t elems = s0 * (ndim == 2 ? s1 : 1);
        if (size != elems * esize)
            FAIL("cpu: %s: tensor \"%s\": size %llu != %llu elements * %llu bytes", path, want,
                 (unsigned long long)size, (unsigned long long)elems, (unsigned long long)esize);
        if (off > real || align_up(size) > real - off)
            FAIL("cpu: %s: tensor \"%s\": slot [%llu, %llu) runs past the end of the file "
                 "(%llu bytes)",
                 path, want, (unsigned long long)off, (unsigned long long)(off + align_up(size)),
                 (unsigned long long)real);
        if (!all_zero(e + 68, 4) || !all_zero(e + 108, 20))
            FAIL("cpu: %s: tensor \"%s\": reserved fields are not zero", path, want);
        prev_end = off + align_up(size);
        f->tensor_data[i] = b + off;
        f->tensor_elems[i] = elems;
    }
    if (prev_end != real)
        FAIL("cpu: %s: file_size: %llu, but the last slot ends at %llu", path,
             (unsigned long long)real, (unsigned long long)prev_end);
    for (uint32_t i = 0; i < n_tensors; i++) {
        const uint8_t *e = b + CPU_FILE_PREAMBLE + (size_t)i * CPU_FILE_ENTRY;
        uint64_t size = rd64(e + 96);
        const uint8_t *p = f->tensor_data[i];
        uint32_t c = cpu_crc32c(0, p, (size_t)size);
        if (c != rd32(e + 104))
            FAIL("cpu: %s: tensor \"%.64s\": crc32c: stored 0x%08x, computed 0x%08x (data "
                 "corrupt)",
                 path, (const char *)e, rd32(e + 104), c);
        if (!all_zero(p + size, align_up(size) - size))
            FAIL("cpu: %s: tensor \"%.64s\": slot padding is not zero", path, (const char *)e);
    }
    return GOMPS_OK;
fail:
    cpu_file_close(f);
    return st;
}

void cpu_file_close(cpu_file *f) {
    if (f->map) munmap(f->map, f->map_size);
    free(f->tensor_data);
    free(f->tensor_elems);
    memset(f, 0, sizeof *f);
}
