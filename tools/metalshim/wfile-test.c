/*
 * wfile-test.c: tests the backends' shared weight-file reader
 * (kernels/wfile/gomps-wfile.c) on Linux. It writes small native files by hand from
 * weights/FORMAT.md (its own writer and its own bitwise CRC-32C, independent
 * of the reader), checks that a valid F32 and F16 file load with the right
 * config and tensor pointers, and that each corruption is rejected with the
 * right status and a message naming the rule.
 *
 *   wfile-test [--expect PATH f32|f16 V H L]...
 * --expect also opens PATH, a file written by the Go writer (weights.Convert,
 * via tools/metalshim/mkwfile), and checks its dtype and config: the C reader
 * and the Go writer must agree on the format.
 * Built and run by tools/check-metal.sh under ASan and UBSan.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wfile/gomps-wfile.h"

static int npass, nfail;

static uint32_t crc_bitwise(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void w32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void w64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t al(uint64_t x) { return (x + 16383) / 16384 * 16384; }

/* tiny config: V=11 H=8 L=2 heads=2 I=16 P=6 T=2 */
enum { V = 11, H = 8, L = 2, NH = 2, I = 16, P = 6, T = 2 };

typedef struct {
    uint8_t *b;
    size_t n;
    uint32_t header_size;
} file;

static void fix_header_crc(file *f) {
    w32(f->b + 16, 0);
    w32(f->b + 16, crc_bitwise(f->b, f->header_size));
}

static file make(uint32_t dtype) {
    const uint32_t nt = 12 * L + 9, es = dtype ? 2 : 4;
    const uint32_t hs = 256 + 128 * nt;
    uint64_t shapes[12 * L + 9][2], off = al(hs);
    const char *tok = "{\"version\":\"1.0\"}";
    char names[12 * L + 9][64];
    int k = 0;
    const char *emb[] = {"embeddings.word", "embeddings.position", "embeddings.token_type", "embeddings.ln.gamma",
                         "embeddings.ln.beta"};
    const uint64_t embs[5][2] = {{V, H}, {P, H}, {T, H}, {H, 0}, {H, 0}};
    for (int i = 0; i < 5; i++, k++) {
        snprintf(names[k], 64, "%s", emb[i]);
        shapes[k][0] = embs[i][0];
        shapes[k][1] = embs[i][1];
    }
    const char *lay[] = {"qkv.weight",      "qkv.bias",      "attn_out.weight", "attn_out.bias",
                         "attn_ln.gamma",   "attn_ln.beta",  "ffn_up.weight",   "ffn_up.bias",
                         "ffn_down.weight", "ffn_down.bias", "ffn_ln.gamma",    "ffn_ln.beta"};
    const uint64_t lays[12][2] = {{3 * H, H}, {3 * H, 0}, {H, H}, {H, 0}, {H, 0}, {H, 0},
                                  {I, H},     {I, 0},     {H, I}, {H, 0}, {H, 0}, {H, 0}};
    for (int l = 0; l < L; l++)
        for (int i = 0; i < 12; i++, k++) {
            snprintf(names[k], 64, "layer.%d.%s", l, lay[i]);
            shapes[k][0] = lays[i][0];
            shapes[k][1] = lays[i][1];
        }
    const char *head[] = {"pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias"};
    const uint64_t heads[4][2] = {{H, H}, {H, 0}, {1, H}, {1, 0}};
    for (int i = 0; i < 4; i++, k++) {
        snprintf(names[k], 64, "%s", head[i]);
        shapes[k][0] = heads[i][0];
        shapes[k][1] = heads[i][1];
    }
    uint64_t end = off + al(strlen(tok));
    uint64_t offs[12 * L + 9], sizes[12 * L + 9];
    for (uint32_t i = 0; i < nt; i++) {
        offs[i] = end;
        sizes[i] = shapes[i][0] * (shapes[i][1] ? shapes[i][1] : 1) * es;
        end += al(sizes[i]);
    }
    file f = {calloc(1, end), end, hs};
    uint8_t *b = f.b;
    memcpy(b, "GOMPSWTS", 8);
    w32(b + 8, 1);
    w32(b + 12, hs);
    w32(b + 20, 16384);
    w64(b + 24, end);
    w32(b + 32, dtype);
    w32(b + 36, nt);
    w32(b + 40, 1);
    uint32_t cfg[] = {V, H, L, NH, I, P, T, 0};
    for (int i = 0; i < 8; i++) w32(b + 44 + 4 * i, cfg[i]);
    double eps = 1e-12;
    memcpy(b + 80, &eps, 8);
    w64(b + 88, off);
    w64(b + 96, strlen(tok));
    memcpy(b + off, tok, strlen(tok));
    /* SHA-256 of tok, computed independently (Python hashlib) */
    static const uint8_t tok_sha[32] = {0xc2, 0x82, 0x3f, 0xb7, 0x76, 0xdf, 0xaa, 0xb4, 0x8b, 0xfa, 0x06,
                                        0xa3, 0x30, 0x05, 0xd0, 0x2a, 0x60, 0x49, 0x2d, 0x87, 0x76, 0x2c,
                                        0xdb, 0x66, 0xc9, 0xc4, 0x15, 0x5f, 0x97, 0xfb, 0xaa, 0x5d};
    memcpy(b + 104, tok_sha, 32);
    snprintf((char *)b + 168, 80, "test/tiny");
    srand(7);
    for (uint32_t i = 0; i < nt; i++) {
        uint8_t *e = b + 256 + 128 * i;
        memcpy(e, names[i], strlen(names[i]));
        w32(e + 64, shapes[i][1] ? 2 : 1);
        w64(e + 72, shapes[i][0]);
        w64(e + 80, shapes[i][1]);
        w64(e + 88, offs[i]);
        w64(e + 96, sizes[i]);
        for (uint64_t j = 0; j < sizes[i]; j++) b[offs[i] + j] = (uint8_t)rand();
        w32(e + 104, crc_bitwise(b + offs[i], sizes[i]));
    }
    fix_header_crc(&f);
    return f;
}

static char dir[] = "/tmp/gomps-wfile-XXXXXX";

static gomps_status load_flags(const file *f, uint32_t flags, gomps_wfile *w, char *err, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/m.gomps", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(f->b, 1, f->n, fp) != f->n || fclose(fp) != 0) {
        fprintf(stderr, "wfile-test: cannot write %s\n", path);
        exit(2);
    }
    return gomps_wfile_open(path, flags, w, err, n);
}

static gomps_status load(const file *f, gomps_wfile *w, char *err, size_t n) {
    return load_flags(f, GOMPS_WFILE_VERIFY_TOKENIZER, w, err, n);
}

static void result(const char *name, int ok, const char *detail) {
    printf("%-44s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
    ok ? npass++ : nfail++;
}

static void valid(uint32_t dtype) {
    file f = make(dtype);
    gomps_wfile w;
    char err[512];
    gomps_status s = load(&f, &w, err, sizeof err);
    int ok = s == GOMPS_OK && w.cfg.dtype == dtype && w.cfg.vocab_size == V && w.cfg.hidden_size == H &&
             w.cfg.num_layers == L && w.cfg.num_heads == NH && w.cfg.intermediate_size == I &&
             w.cfg.max_position == P && w.cfg.type_vocab_size == T && w.cfg.layer_norm_eps == 1e-12 &&
             strcmp(w.cfg.name, "test/tiny") == 0 && w.n_tensors == 12 * L + 9;
    if (ok) {
        for (uint32_t i = 0; i < w.n_tensors; i++) {
            const gomps_wfile_tensor *t = &w.tensors[i];
            const uint8_t *e = f.b + 256 + 128 * i;
            ok &= t->offset % 16384 == 0 && ((uintptr_t)t->data - (uintptr_t)w.base) == t->offset &&
                  memcmp(t->data, f.b + t->offset, t->size) == 0 && strcmp(t->name, (const char *)e) == 0 &&
                  t->slot % 16384 == 0;
        }
        const gomps_wfile_tensor *q = &w.tensors[gomps_wfile_layer_index(1, GOMPS_WL_QKV_W)];
        const gomps_wfile_tensor *c = &w.tensors[gomps_wfile_head_index(&w, GOMPS_WH_CLS_B)];
        ok &= strcmp(q->name, "layer.1.qkv.weight") == 0 && q->shape[0] == 3 * H && q->shape[1] == H;
        ok &= strcmp(c->name, "classifier.bias") == 0 && c->shape[0] == 1 && c->size == (dtype ? 2u : 4u);
    }
    result(dtype ? "valid/f16" : "valid/f32", ok, s == GOMPS_OK ? "" : err);
    gomps_wfile_close(&w);
    gomps_wfile_close(&w); /* a second close is a no-op */
    free(f.b);
}

typedef void (*mutate_fn)(file *);
static void m_truncate(file *f) { f->n = 200; }
static void m_short_tail(file *f) { f->n -= 16384; }
static void m_magic(file *f) { f->b[0] = 'X'; }
static void m_header_crc(file *f) { f->b[170] ^= 1; }
static void m_version(file *f) { w32(f->b + 8, 2), fix_header_crc(f); }
static void m_bf16(file *f) { w32(f->b + 32, 2), fix_header_crc(f); }
static void m_heads(file *f) { w32(f->b + 56, 3), fix_header_crc(f); }
static void m_eps(file *f) {
    double nan = 0.0 / 0.0;
    memcpy(f->b + 80, &nan, 8);
    fix_header_crc(f);
}
static void m_tensor_name(file *f) { f->b[256 + 128 * 6] = 'L', fix_header_crc(f); }
static void m_shape(file *f) { w64(f->b + 256 + 128 * 0 + 72, V + 1), fix_header_crc(f); }
static void m_offset(file *f) { w64(f->b + 256 + 128 * 3 + 88, 16384 * 3 + 64), fix_header_crc(f); }
static void m_size_huge(file *f) { w64(f->b + 256 + 128 * 1 + 96, ~0ull), fix_header_crc(f); }
static void m_tensor_crc(file *f) {
    uint64_t off = 0;
    memcpy(&off, f->b + 256 + 128 * 11 + 88, 8); /* layer.0.ffn_up.weight; test runs little-endian */
    f->b[off + 5] ^= 0x40;
}
static void m_padding(file *f) {
    uint64_t off = 0, size = 0;
    memcpy(&off, f->b + 256 + 128 * 4 + 88, 8);
    memcpy(&size, f->b + 256 + 128 * 4 + 96, 8);
    f->b[off + size + 1] = 1;
}
static void m_file_size(file *f) { w64(f->b + 24, f->n + 1), fix_header_crc(f); }
static void m_name_pad(file *f) { f->b[168 + 70] = 'x', fix_header_crc(f); }
static void m_tok_sha(file *f) { f->b[16384 + 2] ^= 1; }
static void m_name_utf8(file *f) { f->b[168 + 1] = 0xc0, fix_header_crc(f); }
static void m_header_pad(file *f) { f->b[256 + 128 * (12 * L + 9) + 3] = 1; }

static void corrupt(const char *name, mutate_fn m, gomps_status want, const char *needle) {
    file f = make(GOMPS_WFILE_DTYPE_F32);
    m(&f);
    gomps_wfile w;
    char err[512];
    gomps_status s = load(&f, &w, err, sizeof err);
    int ok = s == want && strstr(err, needle) != NULL && strncmp(err, "weights: ", 9) == 0 && w.base == NULL &&
             w.tensors == NULL;
    char detail[700];
    snprintf(detail, sizeof detail, "status=%d err=%s", (int)s, err);
    result(name, ok, detail);
    gomps_wfile_close(&w);
    free(f.b);
}

/* a file from the Go writer must open, with the expected config and tensors */
static void interop(const char *path, const char *dtype, long v, long h, long l) {
    gomps_wfile w;
    char err[512], name[400];
    snprintf(name, sizeof name, "interop/%s", dtype);
    gomps_status s = gomps_wfile_open(path, GOMPS_WFILE_VERIFY_TOKENIZER, &w, err, sizeof err);
    const uint32_t want_dt = strcmp(dtype, "f16") == 0 ? GOMPS_WFILE_DTYPE_F16 : GOMPS_WFILE_DTYPE_F32;
    int ok = s == GOMPS_OK && w.cfg.dtype == want_dt && w.cfg.vocab_size == (uint32_t)v &&
             w.cfg.hidden_size == (uint32_t)h && w.cfg.num_layers == (uint32_t)l && w.n_tensors == 12 * (uint32_t)l + 9;
    for (uint32_t i = 0; ok && i < w.n_tensors; i++)
        /* page-aligned: 16 KiB on Apple silicon, 4 KiB here (offsets are 16 KiB multiples) */
        ok = w.tensors[i].data != NULL && (uintptr_t)w.tensors[i].data % (uintptr_t)sysconf(_SC_PAGESIZE) == 0 &&
             (uintptr_t)w.tensors[i].data - (uintptr_t)w.base == w.tensors[i].offset;
    char detail[700];
    snprintf(detail, sizeof detail, "%s: %s", path, s == GOMPS_OK ? w.cfg.name : err);
    result(name, ok, detail);
    gomps_wfile_close(&w);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 5 < argc) {
            interop(argv[i + 1], argv[i + 2], atol(argv[i + 3]), atol(argv[i + 4]), atol(argv[i + 5]));
            i += 5;
        } else {
            fprintf(stderr, "usage: wfile-test [--expect PATH f32|f16 V H L]...\n");
            return 2;
        }
    }
    if (!mkdtemp(dir)) {
        perror("wfile-test: mkdtemp");
        return 2;
    }
    valid(GOMPS_WFILE_DTYPE_F32);
    valid(GOMPS_WFILE_DTYPE_F16);
    corrupt("corrupt/truncated-header", m_truncate, GOMPS_ERR_FORMAT, "shorter than the 256-byte preamble");
    corrupt("corrupt/truncated-tail", m_short_tail, GOMPS_ERR_FORMAT, "file_size");
    corrupt("corrupt/magic", m_magic, GOMPS_ERR_FORMAT, "magic");
    corrupt("corrupt/header-crc", m_header_crc, GOMPS_ERR_FORMAT, "header_crc32c");
    corrupt("corrupt/version", m_version, GOMPS_ERR_FORMAT, "version: 2");
    corrupt("corrupt/dtype-bf16", m_bf16, GOMPS_ERR_FORMAT, "BF16");
    corrupt("corrupt/heads-not-divisor", m_heads, GOMPS_ERR_FORMAT, "not a multiple of num_heads");
    corrupt("corrupt/eps-nan", m_eps, GOMPS_ERR_FORMAT, "layer_norm_eps");
    corrupt("corrupt/name-padding", m_name_pad, GOMPS_ERR_FORMAT, "name: bytes after the first NUL");
    corrupt("corrupt/name-utf8", m_name_utf8, GOMPS_ERR_FORMAT, "name: not valid UTF-8");
    corrupt("corrupt/header-padding", m_header_pad, GOMPS_ERR_FORMAT, "padding after the header");
    corrupt("corrupt/tokenizer-sha256", m_tok_sha, GOMPS_ERR_FORMAT, "tokenizer_sha256");
    corrupt("corrupt/tensor-name", m_tensor_name, GOMPS_ERR_FORMAT, "expected \"layer.0.qkv.bias\"");
    corrupt("corrupt/tensor-shape", m_shape, GOMPS_ERR_FORMAT, "\"embeddings.word\": shape");
    corrupt("corrupt/tensor-offset", m_offset, GOMPS_ERR_FORMAT, "not a multiple of 16384");
    corrupt("corrupt/tensor-size-overflow", m_size_huge, GOMPS_ERR_FORMAT, "\"embeddings.position\": size");
    corrupt("corrupt/tensor-crc", m_tensor_crc, GOMPS_ERR_FORMAT, "\"layer.0.ffn_up.weight\": crc32c");
    corrupt("corrupt/slot-padding", m_padding, GOMPS_ERR_FORMAT, "\"embeddings.ln.beta\": slot padding");
    corrupt("corrupt/file-size-field", m_file_size, GOMPS_ERR_FORMAT, "file_size");

    gomps_wfile w;
    char err[512];
    {
        /* without GOMPS_WFILE_VERIFY_TOKENIZER the tokenizer bytes are not hashed */
        file f = make(GOMPS_WFILE_DTYPE_F32);
        m_tok_sha(&f);
        gomps_status s = load_flags(&f, 0, &w, err, sizeof err);
        result("tokenizer/unverified", s == GOMPS_OK, s == GOMPS_OK ? "" : err);
        gomps_wfile_close(&w);
        free(f.b);
    }
    char missing[300];
    snprintf(missing, sizeof missing, "%s/absent.gomps", dir);
    gomps_status s = gomps_wfile_open(missing, GOMPS_WFILE_VERIFY_TOKENIZER, &w, err, sizeof err);
    result("io/missing-file", s == GOMPS_ERR_IO && strstr(err, "absent.gomps") != NULL, err);

    char path[256];
    snprintf(path, sizeof path, "%s/m.gomps", dir);
    unlink(path);
    rmdir(dir);
    printf("wfile-test: %d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
