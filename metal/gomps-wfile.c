//go:build darwin && cgo

/*
 * gomps-wfile.c: see gomps-wfile.h. Checks follow the "Reading rules" of
 * weights/FORMAT.md in order; nothing is allocated from a size in the file
 * before the size has been bounded by the file's real size.
 *
 * (The build constraint above is for the go tool: on Linux this file is
 * compiled only by tools/check-metal.sh.)
 */
#define _POSIX_C_SOURCE 200809L
#include "gomps-wfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_FIXED 256u
#define TENSOR_ENTRY 128u
#define HEADER_MAX (1u << 20)
#define TOKENIZER_MAX (64ull << 20)

/* ---- CRC-32C, slice-by-8 (reflected polynomial 0x82F63B78) ---- */

static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xffu];
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

uint32_t gomps_wfile_crc32c(uint32_t crc, const void *data, size_t n) {
    /* Building the table twice from two threads writes identical values;
     * the flag only saves the work. */
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE)) crc_init();
    const uint8_t *p = data;
    crc = ~crc;
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
    return ~crc;
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

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
} reader;

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
    shape[1] = 0;
    *ndim = 1;
    if (i < GOMPS_WT_LAYER0) {
        static const char *const names[] = {"embeddings.word", "embeddings.position", "embeddings.token_type",
                                            "embeddings.ln.gamma", "embeddings.ln.beta"};
        const uint64_t rows[] = {c->vocab_size, c->max_position, c->type_vocab_size};
        snprintf(name, 65, "%s", names[i]);
        if (i < 3) {
            *ndim = 2;
            shape[0] = rows[i];
            shape[1] = H;
        } else {
            shape[0] = H;
        }
        return;
    }
    if (i < GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * L) {
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
        *ndim = dims[k][1] ? 2 : 1;
        return;
    }
    const uint32_t k = i - GOMPS_WT_LAYER0 - GOMPS_WT_PER_LAYER * L;
    static const char *const names[] = {"pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias"};
    const uint64_t dims[4][2] = {{H, H}, {H, 0}, {1, H}, {1, 0}};
    snprintf(name, 65, "%s", names[k]);
    shape[0] = dims[k][0];
    shape[1] = dims[k][1];
    *ndim = dims[k][1] ? 2 : 1;
}

static gomps_status validate(const reader *r, gomps_wfile *f) {
    const uint8_t *b = f->base;
    const uint64_t fsize = f->size;
    gomps_wfile_config *c = &f->cfg;

    if (memcmp(b, "GOMPSWTS", 8) != 0) return fail(r, GOMPS_ERR_FORMAT, "magic: not a gomps weights file");
    const uint32_t version = rd32(b + 8);
    if (version != 1) return fail(r, GOMPS_ERR_FORMAT, "version: %u, this reader knows 1", version);
    const uint32_t header_size = rd32(b + 12);
    const uint64_t hmax = fsize < HEADER_MAX ? fsize : HEADER_MAX;
    if (header_size < HEADER_FIXED || header_size > hmax)
        return fail(r, GOMPS_ERR_FORMAT, "header_size: %u, outside [256, %llu]", header_size,
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
            return fail(r, GOMPS_ERR_FORMAT, "header_crc32c: stored %08x, computed %08x", rd32(b + 16), crc);
    }
    if (rd32(b + 20) != GOMPS_WFILE_ALIGN) return fail(r, GOMPS_ERR_FORMAT, "alignment: %u, not 16384", rd32(b + 20));
    if (rd64(b + 24) != fsize)
        return fail(r, GOMPS_ERR_FORMAT, "file_size: header says %llu bytes, the file has %llu",
                    (unsigned long long)rd64(b + 24), (unsigned long long)fsize);
    c->dtype = rd32(b + 32);
    if (c->dtype == 2) return fail(r, GOMPS_ERR_FORMAT, "dtype: 2 (BF16) is reserved and rejected in version 1");
    if (c->dtype > 1) return fail(r, GOMPS_ERR_FORMAT, "dtype: %u, not 0 (F32) or 1 (F16)", c->dtype);
    if (rd32(b + 40) != 1)
        return fail(r, GOMPS_ERR_FORMAT, "arch: %u, not 1 (BertForSequenceClassification)", rd32(b + 40));

    c->vocab_size = rd32(b + 44);
    c->hidden_size = rd32(b + 48);
    c->num_layers = rd32(b + 52);
    c->num_heads = rd32(b + 56);
    c->intermediate_size = rd32(b + 60);
    c->max_position = rd32(b + 64);
    c->type_vocab_size = rd32(b + 68);
    c->pad_token_id = rd32(b + 72);
    c->layer_norm_eps = rdf64(b + 80);
    struct {
        const char *name;
        uint32_t v, lo, hi;
    } ranges[] = {
        {"vocab_size", c->vocab_size, 1, 1000000},     {"hidden_size", c->hidden_size, 1, 8192},
        {"num_layers", c->num_layers, 1, 128},         {"num_heads", c->num_heads, 1, 256},
        {"intermediate_size", c->intermediate_size, 1, 65536}, {"max_position", c->max_position, 3, 65536},
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
    if (!isfinite(c->layer_norm_eps) || c->layer_norm_eps <= 0 || c->layer_norm_eps >= 1)
        return fail(r, GOMPS_ERR_FORMAT, "layer_norm_eps: %g, not finite in (0, 1)", c->layer_norm_eps);

    const uint64_t data_start = align_up(header_size);
    const uint64_t tok_off = rd64(b + 88), tok_size = rd64(b + 96);
    if (tok_off != data_start)
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer_offset: %llu, not data_start %llu", (unsigned long long)tok_off,
                    (unsigned long long)data_start);
    if (tok_size < 1 || tok_size > TOKENIZER_MAX)
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer_size: %llu, outside [1, 64 MiB]", (unsigned long long)tok_size);
    const uint64_t tok_end = tok_off + align_up(tok_size);
    if (tok_end > fsize)
        return fail(r, GOMPS_ERR_FORMAT, "tokenizer slot [%llu, %llu) runs past the end of the file (%llu)",
                    (unsigned long long)tok_off, (unsigned long long)tok_end, (unsigned long long)fsize);

    const uint8_t *nm = b + 168;
    const uint8_t *nul = memchr(nm, 0, 80);
    if (nul && !all_zero(nul, (size_t)(nm + 80 - nul)))
        return fail(r, GOMPS_ERR_FORMAT, "name: bytes after the first NUL are not all NUL");
    memcpy(c->name, nm, 80);
    c->name[80] = 0;
    if (!all_zero(b + 248, 8)) return fail(r, GOMPS_ERR_FORMAT, "reserved bytes at offset 248 are not 0");

    const uint64_t want_n = 12ull * c->num_layers + 9;
    if (n_tensors != want_n)
        return fail(r, GOMPS_ERR_FORMAT, "n_tensors: %u, not 12 * num_layers + 9 = %llu", n_tensors,
                    (unsigned long long)want_n);

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
        if (!enul || strcmp((const char *)e, want) != 0 || !all_zero(enul, (size_t)(e + 64 - enul)))
            return fail(r, GOMPS_ERR_FORMAT, "tensor %u: name is not \"%s\"", i, want);
        memcpy(t->name, e, 64);
        t->name[64] = 0;
        t->ndim = rd32(e + 64);
        if (t->ndim != want_ndim)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": ndim %u, want %u", want, t->ndim, want_ndim);
        if (rd32(e + 68) != 0) return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": reserved field is not 0", want);
        t->shape[0] = rd64(e + 72);
        t->shape[1] = rd64(e + 80);
        if (t->shape[0] != want_shape[0] || t->shape[1] != want_shape[1])
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": shape {%llu, %llu}, want {%llu, %llu}", want,
                        (unsigned long long)t->shape[0], (unsigned long long)t->shape[1],
                        (unsigned long long)want_shape[0], (unsigned long long)want_shape[1]);
        t->offset = rd64(e + 88);
        if (t->offset % GOMPS_WFILE_ALIGN != 0)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": offset %llu is not a multiple of 16384", want,
                        (unsigned long long)t->offset);
        if (t->offset != prev_end)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": offset %llu, not the end of the previous slot %llu",
                        want, (unsigned long long)t->offset, (unsigned long long)prev_end);
        /* Shapes are bounded by the config ranges above: products fit in 64 bits. */
        const uint64_t count = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
        t->size = rd64(e + 96);
        if (t->size != count * elsize)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": size %llu, want %llu", want, (unsigned long long)t->size,
                        (unsigned long long)(count * elsize));
        t->slot = align_up(t->size);
        if (t->slot > fsize || t->offset > fsize - t->slot)
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": slot [%llu, %llu) runs past the end of the file (%llu)",
                        want, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->slot),
                        (unsigned long long)fsize);
        if (!all_zero(e + 108, 20)) return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": reserved bytes are not 0", want);
        prev_end = t->offset + t->slot;
    }
    if (prev_end != fsize)
        return fail(r, GOMPS_ERR_FORMAT, "file_size: %llu, but the last slot ends at %llu", (unsigned long long)fsize,
                    (unsigned long long)prev_end);
    /* Checksums and slot padding, before any byte is used. */
    for (uint32_t i = 0; i < n_tensors; i++) {
        gomps_wfile_tensor *t = &f->tensors[i];
        const uint8_t *e = b + HEADER_FIXED + (size_t)TENSOR_ENTRY * i;
        const uint8_t *d = b + t->offset;
        const uint32_t crc = gomps_wfile_crc32c(0, d, t->size);
        if (crc != rd32(e + 104))
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": crc32c stored %08x, computed %08x", t->name,
                        rd32(e + 104), crc);
        if (!all_zero(d + t->size, t->slot - t->size))
            return fail(r, GOMPS_ERR_FORMAT, "tensor \"%s\": slot padding is not zero", t->name);
        t->data = d;
    }
    return GOMPS_OK;
}

gomps_status gomps_wfile_open(const char *path, gomps_wfile *f, char *err, size_t errlen) {
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
        return fail(&r, GOMPS_ERR_FORMAT, "file is %lld bytes, shorter than the 256-byte header",
                    (long long)st.st_size);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) return fail(&r, GOMPS_ERR_IO, "mmap: %s", strerror(e));
    f->base = base;
    f->size = (size_t)st.st_size;
    gomps_status s = validate(&r, f);
    if (s != GOMPS_OK) gomps_wfile_close(f);
    return s;
}

void gomps_wfile_close(gomps_wfile *f) {
    if (!f) return;
    if (f->base) munmap(f->base, f->size);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}
