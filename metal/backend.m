//go:build darwin && cgo

/*
 * backend.m: the native ABI (kernels/gomps.h) on Metal: the table that
 * gomps_backend_metal() returns, the one symbol of the ABI this backend
 * exports.
 *
 * A model (GompsModel) owns the device, the mapped weights file, one
 * MTLBuffer per weight tensor (wrapping the mapping without a copy when the
 * dtypes match), the plan of the forward (gomps-plan.h: one MPSGraph segment
 * by default, more when GOMPS_METAL_KERNELS puts our kernels between them),
 * the MPSGraph and, per bucket, one compiled executable per segment; it is
 * read-only after model_init, which compiles every bucket and runs each
 * once, so no request ever waits on a compile. A context (GompsSession) owns
 * a command queue, shared-storage I/O buffers and the plan's private
 * intermediate buffers, sized for the largest bucket. A forward encodes the
 * plan's steps in order on one MPSCommandBuffer. Encoding is serialized per
 * model by a lock (held only while encoding) until sharing an executable
 * across threads is shown safe on a Mac (GOMPS_METAL_UNLOCKED_ENCODE=1 lifts
 * it for that test); commit and wait happen outside the lock.
 *
 * Every entry point runs in its own @autoreleasepool and turns NSExceptions
 * into GOMPS_ERR_DEVICE with the exception's text; nothing throws across the
 * boundary.
 */
#import "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char init_error[GOMPS_ERR_LEN];

static gomps_status init_fail(gomps_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(init_error, sizeof init_error, fmt, ap);
    va_end(ap);
    return st;
}

static gomps_status ctx_fail(GompsSession *s, gomps_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->lastError, sizeof s->lastError, fmt, ap);
    va_end(ap);
    return st;
}

double gomps_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *nsstr(NSString *s) { return s ? s.UTF8String : ""; }

@implementation GompsModel
- (void)dealloc {
    /* Everything wrapping the mapping goes before the mapping. */
    self.buckets = nil;
    self.graph = nil;
    self.weightData = nil;
    self.weightTensors = nil;
    self.weightBuffers = nil;
    self.embedPipeline = nil;
    self.layerNormPipeline = nil;
    self.softmaxPipeline = nil;
    self.biasGeluPipeline = nil;
    free(plan);
    plan = NULL;
    gomps_wfile_close(&file);
    pthread_mutex_destroy(&encodeLock);
}
@end

@implementation GompsSession
@end

static const char *last_init_error(void) { return init_error; }

/* ---- model ---- */

static MPSShape *tensor_shape(const gomps_wfile_tensor *t) {
    return t->ndim == 2 ? @[ @(t->shape[0]), @(t->shape[1]) ] : @[ @(t->shape[0]) ];
}

/* One MTLBuffer per weight tensor: the mapped slot itself when the file's
 * dtype is the compute dtype and the page size divides the slot alignment,
 * else a converted or copied buffer. */
static gomps_status make_weights(GompsModel *m) {
    const gomps_wfile *f = &m->file;
    const int same = (f->cfg.dtype == GOMPS_WFILE_DTYPE_F32) == (m->dtype == MPSDataTypeFloat32);
    const long page = getpagesize();
    const int nocopy_ok = same && page > 0 && GOMPS_WFILE_ALIGN % (unsigned long)page == 0 &&
                          getenv("GOMPS_METAL_COPY_WEIGHTS") == NULL;
    NSMutableArray<id<MTLBuffer>> *bufs = [NSMutableArray arrayWithCapacity:f->n_tensors];
    NSMutableArray<MPSGraphTensorData *> *datas = [NSMutableArray arrayWithCapacity:f->n_tensors];
    int zero_copy = 1;
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const gomps_wfile_tensor *t = &f->tensors[i];
        id<MTLBuffer> buf = nil;
        if (nocopy_ok) {
            /* page-aligned pointer and length (FORMAT.md: 16 KiB slots) */
            buf = [m.device newBufferWithBytesNoCopy:(void *)t->data
                                              length:(NSUInteger)t->slot
                                             options:MTLResourceStorageModeShared
                                         deallocator:nil];
        }
        if (buf == nil) {
            zero_copy = 0;
            const uint64_t count = t->size / (f->cfg.dtype == GOMPS_WFILE_DTYPE_F32 ? 4 : 2);
            if (same) {
                buf = [m.device newBufferWithBytes:t->data length:(NSUInteger)t->size options:MTLResourceStorageModeShared];
            } else {
                buf = [m.device newBufferWithLength:(NSUInteger)(count * m->elemSize) options:MTLResourceStorageModeShared];
                if (buf != nil && m->dtype == MPSDataTypeFloat16) {
                    const float *src = t->data;
                    uint16_t *dst = buf.contents;
                    for (uint64_t k = 0; k < count; k++) dst[k] = gomps_f32_to_f16(src[k]);
                } else if (buf != nil) {
                    const uint16_t *src = t->data;
                    float *dst = buf.contents;
                    for (uint64_t k = 0; k < count; k++) dst[k] = gomps_f16_to_f32(src[k]);
                }
            }
            if (buf == nil) {
                return init_fail(GOMPS_ERR_OOM, "metal: tensor \"%s\": cannot allocate a %llu-byte MTLBuffer", t->name,
                                 (unsigned long long)t->size);
            }
        }
        [bufs addObject:buf];
        [datas addObject:[[MPSGraphTensorData alloc] initWithMTLBuffer:buf shape:tensor_shape(t) dataType:m->dtype]];
    }
    m.weightBuffers = bufs;
    m.weightData = datas;
    m->stats.weights_zero_copy = zero_copy;
    for (id<MTLBuffer> b in bufs) m->info.weights_bytes += (int64_t)b.length;
    return GOMPS_OK;
}

/* GOMPS_METAL_KERNELS: "", "none", "all", or a comma list of embed,
 * layer_norm, softmax (or masked_softmax) and bias_gelu. */
static gomps_status parse_kernels(GompsModel *m) {
    const char *env = getenv("GOMPS_METAL_KERNELS");
    m->kernels = 0;
    if (env == NULL || env[0] == 0 || strcmp(env, "none") == 0) return GOMPS_OK;
    static const struct {
        const char *name;
        uint32_t bits;
    } known[] = {
        {"embed", GOMPS_METAL_KERNEL_EMBED},
        {"layer_norm", GOMPS_METAL_KERNEL_LAYER_NORM},
        {"softmax", GOMPS_METAL_KERNEL_SOFTMAX},
        {"masked_softmax", GOMPS_METAL_KERNEL_SOFTMAX},
        {"bias_gelu", GOMPS_METAL_KERNEL_BIAS_GELU},
        {"all", GOMPS_METAL_KERNEL_ALL},
    };
    char buf[256];
    if (strlen(env) >= sizeof buf) {
        return init_fail(GOMPS_ERR_INVALID_ARG, "metal: GOMPS_METAL_KERNELS: longer than %zu bytes", sizeof buf - 1);
    }
    snprintf(buf, sizeof buf, "%s", env);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ') tok[--n] = 0;
        uint32_t bits = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
            if (strcmp(tok, known[k].name) == 0) bits = known[k].bits;
        }
        if (bits == 0) {
            return init_fail(GOMPS_ERR_INVALID_ARG,
                             "metal: GOMPS_METAL_KERNELS=\"%s\": unknown kernel \"%s\" (known: none, all, or a comma "
                             "list of embed, layer_norm, softmax, bias_gelu)",
                             env, tok);
        }
        m->kernels |= bits;
    }
    if ((m->kernels & GOMPS_METAL_KERNEL_EMBED) &&
        m->file.cfg.hidden_size > GOMPS_ROW_THREADS * GOMPS_EMBED_MAX_PER_THREAD) {
        return init_fail(GOMPS_ERR_UNSUPPORTED, "metal: embed kernel: hidden_size %u above %d",
                         m->file.cfg.hidden_size, GOMPS_ROW_THREADS * GOMPS_EMBED_MAX_PER_THREAD);
    }
    return GOMPS_OK;
}

static void isa_name(id<MTLDevice> dev, char *out, size_t n) {
    /* "Apple M2 Pro" -> "apple-m2-pro" */
    const char *name = nsstr(dev.name);
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < n; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (ch == ' ') ch = '-';
        out[k++] = ch;
    }
    out[k] = 0;
}

/* The system default device, if Metal Performance Shaders supports it; else
 * nil with why in why. */
static id<MTLDevice> usable_device(char *why, size_t n) {
    id<MTLDevice> dev = MTLCreateSystemDefaultDevice();
    if (dev == nil) {
        snprintf(why, n, "metal: no usable Metal device: none found");
        return nil;
    }
    if (!MPSSupportsMTLDevice(dev)) {
        snprintf(why, n, "metal: no usable Metal device: %s is not supported by Metal Performance Shaders",
                 nsstr(dev.name));
        return nil;
    }
    return dev;
}

static GompsSession *session_new(GompsModel *m, char *err, size_t errlen);
static id<MTLBuffer> session_buffer(GompsSession *s, int v);
static gomps_status session_run(GompsSession *s, GompsBucket *b, NSUInteger bi, int32_t rows, int32_t seq,
                                const int32_t *ids, const int32_t *type_ids, const int32_t *lengths, float *logits);

static gomps_status compile_buckets(GompsModel *m) {
    const double t0 = gomps_now_ms();
    MPSGraphDevice *gdev = [MPSGraphDevice deviceWithMTLDevice:m.device];
    MPSGraphCompilationDescriptor *cd = [MPSGraphCompilationDescriptor new];
    cd.optimizationLevel = MPSGraphOptimizationLevel0;
    cd.waitForCompilationCompletion = YES;

    const gomps_wfile_config *cfg = &m->file.cfg;
    char err[GOMPS_ERR_LEN] = "";
    for (GompsBucket *b in m.buckets) {
        const double tb = gomps_now_ms();
        gomps_status st = gomps_graph_build_bucket(m, b, gdev, cd, err, sizeof err);
        if (st != GOMPS_OK) return init_fail(st, "%s", err);
        /* the session's buffers: one of each class and pool index, sized for
         * the largest bucket */
        for (int c = 0; c < GOMPS_BUF_NCLASS; c++) {
            const size_t es = c < GOMPS_BUF_FIRST_POOL ? 4 : m->elemSize;
            const uint64_t bytes = es * gomps_plan_class_elems(c, b.batch, b.seq, cfg->hidden_size, cfg->num_heads,
                                                              cfg->intermediate_size);
            if (bytes > m->poolBytes[c]) m->poolBytes[c] = bytes;
        }
        b.ms = gomps_now_ms() - tb;
    }
    /* warm-up: one run per bucket through an ordinary session */
    GompsSession *s = session_new(m, err, sizeof err);
    if (s == nil) return init_fail(GOMPS_ERR_DEVICE, "%s", err);
    NSUInteger bi = 0;
    for (GompsBucket *b in m.buckets) {
        const double tw = gomps_now_ms();
        const size_t n = (size_t)b.batch * (size_t)b.seq;
        int32_t *ids = calloc(n, sizeof *ids), *types = calloc(n, sizeof *types), *lens = calloc((size_t)b.batch, sizeof *lens);
        const int32_t nl = m->info.num_labels;
        float *out = calloc((size_t)b.batch * (size_t)nl, sizeof *out);
        gomps_status st = GOMPS_ERR_OOM;
        if (ids && types && lens && out) {
            for (int32_t r = 0; r < b.batch; r++) {
                lens[r] = b.seq;
                for (int32_t j = 0; j < b.seq; j++) ids[(size_t)r * (size_t)b.seq + (size_t)j] = (int32_t)m->file.cfg.pad_token_id;
            }
            st = session_run(s, b, bi, b.batch, b.seq, ids, types, lens, out);
            for (int32_t r = 0; st == GOMPS_OK && r < b.batch * nl; r++) {
                if (!isfinite(out[r])) {
                    st = ctx_fail(s, GOMPS_ERR_DEVICE, "metal: warm-up of bucket %dx%d: logit %d is %g", b.batch, b.seq,
                                  r, (double)out[r]);
                }
            }
        }
        free(ids);
        free(types);
        free(lens);
        free(out);
        if (st != GOMPS_OK) return init_fail(st, "%s", s->lastError[0] ? s->lastError : "metal: warm-up: out of memory");
        b.ms += gomps_now_ms() - tw;
        bi++;
    }
    m->stats.compile_ms = gomps_now_ms() - t0;
    m->info.context_bytes = s->bytes;
    return GOMPS_OK;
}

static gomps_status model_init(const char *path, const gomps_model_options *opts, GompsModel **out) {
    const double t0 = gomps_now_ms();
    gomps_model_options o = {0};
    if (opts != NULL) {
        if (opts->struct_size < sizeof(gomps_model_options)) {
            return init_fail(GOMPS_ERR_INVALID_ARG, "metal: options: struct_size %u, want at least %zu",
                             opts->struct_size, sizeof(gomps_model_options));
        }
        o = *opts;
    }
    if (o.precision != GOMPS_PRECISION_F32 && o.precision != GOMPS_PRECISION_F16) {
        return init_fail(o.precision < 0 ? GOMPS_ERR_INVALID_ARG : GOMPS_ERR_UNSUPPORTED,
                         "metal: precision %d is not supported (f32 = 0, f16 = 2)", o.precision);
    }
    GompsModel *m = [GompsModel new];
    pthread_mutex_init(&m->encodeLock, NULL);
    m->dtype = o.precision == GOMPS_PRECISION_F16 ? MPSDataTypeFloat16 : MPSDataTypeFloat32;
    m->elemSize = o.precision == GOMPS_PRECISION_F16 ? 2 : 4;
    m->lockEncode = getenv("GOMPS_METAL_UNLOCKED_ENCODE") == NULL;

    /* the file and the options first, so their errors need no GPU; the one
     * validation of the file, the tokenizer's SHA-256 included */
    char err[GOMPS_ERR_LEN];
    gomps_status st = gomps_wfile_open(path, GOMPS_WFILE_VERIFY_TOKENIZER, &m->file, err, sizeof err);
    if (st != GOMPS_OK) return init_fail(st, "%s", err);
    const gomps_wfile_config *cfg = &m->file.cfg;
    m->info.num_labels = (int32_t)m->file.tensors[gomps_wfile_head_index(&m->file, GOMPS_WH_CLS_B)].elems;

    int32_t max_batch = o.max_batch ? o.max_batch : 64;
    int32_t max_seq = o.max_seq ? o.max_seq : (int32_t)cfg->max_position;
    if (max_batch < 1 || max_batch > 4096) {
        return init_fail(GOMPS_ERR_INVALID_ARG, "metal: options: max_batch %d outside 1..4096", max_batch);
    }
    if (max_seq > (int32_t)cfg->max_position) {
        return init_fail(GOMPS_ERR_INVALID_ARG, "metal: %s: max_seq %d is more than the model's %u positions", path,
                         max_seq, cfg->max_position);
    }
    if (max_seq < 1) return init_fail(GOMPS_ERR_INVALID_ARG, "metal: options: max_seq %d is below 1", max_seq);
    if ((st = parse_kernels(m)) != GOMPS_OK) return st;
    m->plan = malloc(sizeof *m->plan);
    if (m->plan == NULL) return init_fail(GOMPS_ERR_OOM, "metal: plan: out of memory");
    if (gomps_plan_build(m->plan, (int32_t)cfg->num_layers, m->kernels, err, sizeof err) != 0) {
        return init_fail(GOMPS_ERR_UNSUPPORTED, "%s", err);
    }

    NSMutableArray<GompsBucket *> *buckets = [NSMutableArray array];
    if ((st = gomps_buckets_resolve(o.buckets, max_batch, max_seq, buckets, err, sizeof err)) != GOMPS_OK) {
        return init_fail(st, "%s", err);
    }
    m.buckets = buckets;
    int64_t tokens = 0;
    int32_t batch = 0;
    for (GompsBucket *b in buckets) {
        if ((int64_t)b.batch * b.seq > tokens) tokens = (int64_t)b.batch * b.seq;
        if (b.batch > batch) batch = b.batch;
    }
    m.maxBucketTokens = tokens;
    m.maxBucketBatch = batch;

    m.device = usable_device(err, sizeof err);
    if (m.device == nil) return init_fail(GOMPS_ERR_DEVICE, "%s", err);

    if ((st = make_weights(m)) != GOMPS_OK) return st;
    m.graph = [MPSGraph new];
    NSMutableArray<MPSGraphTensor *> *ph = [NSMutableArray arrayWithCapacity:m->file.n_tensors];
    for (uint32_t i = 0; i < m->file.n_tensors; i++) {
        [ph addObject:[m.graph placeholderWithShape:tensor_shape(&m->file.tensors[i])
                                           dataType:m->dtype
                                               name:[NSString stringWithUTF8String:m->file.tensors[i].name]]];
    }
    m.weightTensors = ph;
    /* the pipelines of the selected kernels */
    static const struct {
        uint32_t bit;
        const char *op;
    } ops[] = {
        {GOMPS_METAL_KERNEL_EMBED, "embed"},
        {GOMPS_METAL_KERNEL_LAYER_NORM, "layer_norm"},
        {GOMPS_METAL_KERNEL_SOFTMAX, "masked_softmax"},
        {GOMPS_METAL_KERNEL_BIAS_GELU, "bias_gelu"},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        if (!(m->kernels & ops[k].bit)) continue;
        char name[64];
        gomps_metal_kernel_name(name, sizeof name, ops[k].op, o.precision, NULL);
        id<MTLComputePipelineState> pipe = gomps_metal_pipeline(m.device, name, err, sizeof err);
        if (pipe == nil) return init_fail(GOMPS_ERR_DEVICE, "%s", err);
        switch (ops[k].bit) {
        case GOMPS_METAL_KERNEL_EMBED: m.embedPipeline = pipe; break;
        case GOMPS_METAL_KERNEL_LAYER_NORM: m.layerNormPipeline = pipe; break;
        case GOMPS_METAL_KERNEL_SOFTMAX: m.softmaxPipeline = pipe; break;
        default: m.biasGeluPipeline = pipe; break;
        }
    }

    gomps_model_info *inf = &m->info;
    inf->struct_size = sizeof *inf;
    snprintf(inf->arch, sizeof inf->arch, "bert");
    snprintf(inf->name, sizeof inf->name, "%s", cfg->name);
    memcpy(inf->source_sha256, cfg->source_sha256, sizeof inf->source_sha256);
    inf->pad_token_id = (int32_t)cfg->pad_token_id;
    inf->layer_norm_eps = cfg->layer_norm_eps;
    inf->tokenizer = m->file.tokenizer; /* in the mapping, which the model keeps */
    inf->tokenizer_size = m->file.tokenizer_size;
    inf->vocab_size = (int32_t)cfg->vocab_size;
    inf->hidden_size = (int32_t)cfg->hidden_size;
    inf->num_layers = (int32_t)cfg->num_layers;
    inf->num_heads = (int32_t)cfg->num_heads;
    inf->intermediate_size = (int32_t)cfg->intermediate_size;
    inf->max_position = (int32_t)cfg->max_position;
    inf->type_vocab_size = (int32_t)cfg->type_vocab_size;
    inf->precision = o.precision;
    inf->max_batch = max_batch;
    inf->max_seq = max_seq;
    snprintf(inf->backend, sizeof inf->backend, "metal");
    isa_name(m.device, inf->isa, sizeof inf->isa);

    if ((st = compile_buckets(m)) != GOMPS_OK) return st;

    gomps_metal_stats *s = &m->stats;
    s->struct_size = sizeof *s;
    s->n_buckets = (int32_t)buckets.count;
    for (NSUInteger i = 0; i < buckets.count; i++) {
        s->bucket_batch[i] = buckets[i].batch;
        s->bucket_seq[i] = buckets[i].seq;
        s->bucket_ms[i] = buckets[i].ms;
    }
    s->kernels = m->kernels;
    s->segments = m->plan->n_segments;
    s->kernel_steps = m->plan->n_steps - m->plan->n_segments;
    s->locked_encode = m->lockEncode;
    s->load_ms = gomps_now_ms() - t0;
    if (getenv("GOMPS_METAL_VERBOSE")) {
        fprintf(stderr,
                "gomps metal: loaded %s on %s in %.1f ms (%d buckets compiled and warmed in %.1f ms, weights %s, "
                "kernels 0x%x: %d graph segments + %d kernel steps per forward)\n",
                path, inf->isa, s->load_ms, s->n_buckets, s->compile_ms, s->weights_zero_copy ? "zero-copy" : "copied",
                m->kernels, s->segments, s->kernel_steps);
    }
    *out = m;
    return GOMPS_OK;
}

static gomps_status abi_model_init(const char *path, const gomps_model_options *opts, gomps_model_t **out) {
    init_error[0] = 0;
    if (out == NULL) return init_fail(GOMPS_ERR_INVALID_ARG, "metal: model_init: out is NULL");
    *out = NULL;
    if (path == NULL) return init_fail(GOMPS_ERR_INVALID_ARG, "metal: model_init: path is NULL");
    gomps_status st;
    @autoreleasepool {
        @try {
            GompsModel *m = nil;
            st = model_init(path, opts, &m);
            if (st == GOMPS_OK) *out = (gomps_model_t *)(__bridge_retained void *)m;
        } @catch (NSException *e) {
            st = init_fail(GOMPS_ERR_DEVICE, "metal: model_init: %s: %s", nsstr(e.name), nsstr(e.reason));
        }
    }
    return st;
}

static void model_free(gomps_model_t *model) {
    if (model == NULL) return;
    @autoreleasepool {
        @try {
            /* ownership back to ARC, released at the end of the statement */
            (void)(__bridge_transfer GompsModel *)(void *)model;
        } @catch (NSException *e) {
            (void)e; /* nothing to report to: free never fails */
        }
    }
}

static gomps_status model_info(const gomps_model_t *model, gomps_model_info *out) {
    if (model == NULL || out == NULL || out->struct_size < sizeof(gomps_model_info)) return GOMPS_ERR_INVALID_ARG;
    @autoreleasepool {
        GompsModel *m = (__bridge GompsModel *)(void *)model;
        memcpy(out, &m->info, sizeof m->info); /* a larger caller struct keeps its zeroed tail */
    }
    return GOMPS_OK;
}

gomps_status gomps_metal_model_stats(const gomps_model_t *model, gomps_metal_stats *out) {
    if (model == NULL || out == NULL) return GOMPS_ERR_INVALID_ARG;
    @autoreleasepool {
        GompsModel *m = (__bridge GompsModel *)(void *)model;
        *out = m->stats;
    }
    return GOMPS_OK;
}

/* ---- context ---- */

static GompsSession *session_new(GompsModel *m, char *err, size_t errlen) {
    GompsSession *s = [GompsSession new];
    s.model = m;
    s.queue = [m.device newCommandQueue];
    const NSUInteger tokens = (NSUInteger)m.maxBucketTokens, batch = (NSUInteger)m.maxBucketBatch;
    const MTLResourceOptions shared = MTLResourceStorageModeShared;
    s.idsBuf = [m.device newBufferWithLength:tokens * sizeof(int32_t) options:shared];
    s.typesBuf = [m.device newBufferWithLength:tokens * sizeof(int32_t) options:shared];
    s.maskBuf = [m.device newBufferWithLength:tokens * sizeof(float) options:shared];
    s.lengthsBuf = [m.device newBufferWithLength:batch * sizeof(int32_t) options:shared];
    s.logitsBuf = [m.device newBufferWithLength:batch * (NSUInteger)m->info.num_labels * sizeof(float) options:shared];
    if (s.queue == nil || s.idsBuf == nil || s.typesBuf == nil || s.maskBuf == nil || s.lengthsBuf == nil ||
        s.logitsBuf == nil) {
        snprintf(err, errlen, "metal: context: cannot create the command queue or I/O buffers (%lu tokens)",
                 (unsigned long)tokens);
        return nil;
    }
    /* the plan's intermediates: GPU-only buffers */
    NSMutableArray *pools = [NSMutableArray arrayWithCapacity:GOMPS_BUF_NCLASS];
    for (int c = 0; c < GOMPS_BUF_NCLASS; c++) {
        NSMutableArray<id<MTLBuffer>> *pool = [NSMutableArray array];
        for (int k = 0; c >= GOMPS_BUF_FIRST_POOL && k < m->plan->pool[c]; k++) {
            id<MTLBuffer> buf = [m.device newBufferWithLength:(NSUInteger)m->poolBytes[c] options:MTLResourceStorageModePrivate];
            if (buf == nil) {
                snprintf(err, errlen, "metal: context: cannot allocate a %llu-byte buffer for intermediates (class %d)",
                         (unsigned long long)m->poolBytes[c], c);
                return nil;
            }
            buf.label = [NSString stringWithFormat:@"gomps class %d #%d", c, k];
            [pool addObject:buf];
        }
        [pools addObject:pool];
    }
    s.pools = pools;
    for (id<MTLBuffer> b in @[ s.idsBuf, s.typesBuf, s.maskBuf, s.lengthsBuf, s.logitsBuf ]) s->bytes += (int64_t)b.length;
    for (NSArray<id<MTLBuffer>> *pool in pools)
        for (id<MTLBuffer> b in pool) s->bytes += (int64_t)b.length;
    /* per bucket and segment: the model's weight feeds plus views of our
     * buffers with the bucket's shape (a view may be shorter than its buffer) */
    NSMutableArray *inputs = [NSMutableArray array], *results = [NSMutableArray array];
    for (GompsBucket *b in m.buckets) {
        NSMutableArray *bin = [NSMutableArray array], *bres = [NSMutableArray array];
        for (GompsStep *st in b.steps) {
            if (st.exe == nil) {
                [bin addObject:[NSNull null]];
                [bres addObject:[NSNull null]];
                continue;
            }
            NSMutableArray *in = [st.inputTemplate mutableCopy];
            for (NSUInteger k = 0; k < st.ioValue.count; k++) {
                const int v = st.ioValue[k].intValue;
                if (v < 0) continue;
                in[k] = [[MPSGraphTensorData alloc] initWithMTLBuffer:session_buffer(s, v)
                                                                shape:gomps_graph_value_shape(m, b, v)
                                                             dataType:gomps_graph_value_dtype(m, v)];
            }
            NSMutableArray *res = [NSMutableArray arrayWithCapacity:st.resultValues.count];
            for (NSNumber *n in st.resultValues) {
                const int v = n.intValue;
                [res addObject:[[MPSGraphTensorData alloc] initWithMTLBuffer:session_buffer(s, v)
                                                                       shape:gomps_graph_value_shape(m, b, v)
                                                                    dataType:gomps_graph_value_dtype(m, v)]];
            }
            [bin addObject:in];
            [bres addObject:res];
        }
        [inputs addObject:bin];
        [results addObject:bres];
    }
    s.inputs = inputs;
    s.results = results;
    return s;
}

static gomps_status context_init(gomps_model_t *model, int32_t n_threads, gomps_context_t **out) {
    (void)n_threads; /* the GPU schedules itself; accepted for the ABI */
    init_error[0] = 0;
    if (out == NULL) return init_fail(GOMPS_ERR_INVALID_ARG, "metal: context_init: out is NULL");
    *out = NULL;
    if (model == NULL) return init_fail(GOMPS_ERR_INVALID_ARG, "metal: context_init: model is NULL");
    gomps_status st = GOMPS_OK;
    @autoreleasepool {
        @try {
            char err[GOMPS_ERR_LEN] = "";
            GompsSession *s = session_new((__bridge GompsModel *)(void *)model, err, sizeof err);
            if (s == nil) st = init_fail(GOMPS_ERR_OOM, "%s", err);
            else *out = (gomps_context_t *)(__bridge_retained void *)s;
        } @catch (NSException *e) {
            st = init_fail(GOMPS_ERR_DEVICE, "metal: context_init: %s: %s", nsstr(e.name), nsstr(e.reason));
        }
    }
    return st;
}

static void context_free(gomps_context_t *ctx) {
    if (ctx == NULL) return;
    @autoreleasepool {
        @try {
            (void)(__bridge_transfer GompsSession *)(void *)ctx;
        } @catch (NSException *e) {
            (void)e;
        }
    }
}

static gomps_status context_set_threads(gomps_context_t *ctx, int32_t n_threads) {
    (void)n_threads; /* no CPU threads on this backend */
    return ctx == NULL ? GOMPS_ERR_INVALID_ARG : GOMPS_OK;
}

static const char *context_last_error(const gomps_context_t *ctx) {
    if (ctx == NULL) return "";
    const char *text;
    @autoreleasepool {
        GompsSession *s = (__bridge GompsSession *)(void *)ctx;
        text = s->lastError; /* owned by the context */
    }
    return text;
}

/* The buffer plan value v lives in for session s. */
static id<MTLBuffer> session_buffer(GompsSession *s, int v) {
    const gomps_plan_value *pv = &s.model->plan->values[v];
    switch (pv->cls) {
    case GOMPS_BUF_IDS: return s.idsBuf;
    case GOMPS_BUF_TYPES: return s.typesBuf;
    case GOMPS_BUF_MASK: return s.maskBuf;
    case GOMPS_BUF_LENGTHS: return s.lengthsBuf;
    case GOMPS_BUF_LOGITS: return s.logitsBuf;
    default: return s.pools[pv->cls][(NSUInteger)pv->buf];
    }
}

/* Encodes plan step si, one of our kernels, for bucket b on cb, as
 * gomps_plan_dispatch_of describes it (tools/metalshim/layer.cpp runs the
 * same descriptions through the shim on Linux). */
static gomps_status encode_kernel(GompsSession *s, GompsBucket *b, NSInteger si, MPSCommandBuffer *cb) {
    GompsModel *m = s.model;
    const gomps_wfile_config *c = &m->file.cfg;
    const gomps_plan_dims dims = {(uint32_t)b.batch, (uint32_t)b.seq, c->hidden_size, c->num_heads, c->intermediate_size,
                                  c->vocab_size, c->type_vocab_size, c->max_position, (float)c->layer_norm_eps};
    gomps_plan_dispatch d;
    if (gomps_plan_dispatch_of(m->plan, (int)si, &dims, &d, s->lastError, sizeof s->lastError) != 0) {
        return GOMPS_ERR_INTERNAL;
    }
    id<MTLComputePipelineState> pipe = nil;
    switch ((gomps_unit_kind)d.kind) {
    case GOMPS_U_EMBED: pipe = m.embedPipeline; break;
    case GOMPS_U_SOFTMAX: pipe = m.softmaxPipeline; break;
    case GOMPS_U_LN1:
    case GOMPS_U_LN2: pipe = m.layerNormPipeline; break;
    case GOMPS_U_GELU: pipe = m.biasGeluPipeline; break;
    default: break;
    }
    if (pipe == nil) return ctx_fail(s, GOMPS_ERR_INTERNAL, "metal: forward: step %ld: no pipeline for %s", (long)si, d.op);
    id<MTLComputeCommandEncoder> enc = [cb computeCommandEncoder];
    [enc pushDebugGroup:[NSString stringWithFormat:@"%s step %ld %dx%d", d.op, (long)si, b.batch, b.seq]];
    [enc setComputePipelineState:pipe];
    [enc setBytes:&d.args length:d.args_size atIndex:0];
    for (int i = 1; i < d.n_bind; i++) {
        id<MTLBuffer> buf = d.bind[i].value >= 0 ? session_buffer(s, d.bind[i].value) : m.weightBuffers[(NSUInteger)d.bind[i].weight];
        [enc setBuffer:buf offset:0 atIndex:(NSUInteger)i];
    }
    [enc dispatchThreadgroups:MTLSizeMake(d.groups, 1, 1) threadsPerThreadgroup:MTLSizeMake(d.threads, 1, 1)];
    [enc popDebugGroup];
    [enc endEncoding];
    return GOMPS_OK;
}

/* Runs rows (<= b.batch) rows of length seq (<= b.seq) through bucket b. */
static gomps_status session_run(GompsSession *s, GompsBucket *b, NSUInteger bi, int32_t rows, int32_t seq,
                                const int32_t *ids, const int32_t *type_ids, const int32_t *lengths, float *logits) {
    GompsModel *m = s.model;
    const int32_t B = b.batch, S = b.seq;
    int32_t *dids = s.idsBuf.contents, *dtypes = s.typesBuf.contents;
    float *dmask = s.maskBuf.contents;
    for (int32_t r = 0; r < B; r++) {
        /* rows past the request are dummies of length 1: position 0 stays
         * unmasked, so no row is ever fully masked */
        const int32_t len = r < rows ? lengths[r] : 1;
        int32_t *ri = dids + (size_t)r * (size_t)S, *rt = dtypes + (size_t)r * (size_t)S;
        float *rm = dmask + (size_t)r * (size_t)S;
        for (int32_t j = 0; j < S; j++) {
            const int real = j < len;
            ri[j] = real && r < rows ? ids[(size_t)r * (size_t)seq + (size_t)j] : (int32_t)m->file.cfg.pad_token_id;
            rt[j] = real && r < rows ? type_ids[(size_t)r * (size_t)seq + (size_t)j] : 0;
            rm[j] = real ? 0.0f : GOMPS_MASK_VALUE;
        }
    }
    int32_t *dlens = s.lengthsBuf.contents;
    for (int32_t r = 0; r < B; r++) dlens[r] = r < rows ? lengths[r] : 1;
    MPSCommandBuffer *cb = [MPSCommandBuffer commandBufferFromCommandQueue:s.queue];
    gomps_status st_enc = GOMPS_OK;
    if (m->lockEncode) pthread_mutex_lock(&m->encodeLock);
    @try {
        for (GompsStep *st in b.steps) {
            if (st.exe == nil) {
                st_enc = encode_kernel(s, b, st.index, cb);
                if (st_enc != GOMPS_OK) break;
            } else {
                [st.exe encodeToCommandBuffer:cb
                                  inputsArray:s.inputs[bi][(NSUInteger)st.index]
                                 resultsArray:s.results[bi][(NSUInteger)st.index]
                          executionDescriptor:nil];
            }
        }
    } @finally {
        if (m->lockEncode) pthread_mutex_unlock(&m->encodeLock);
    }
    if (st_enc != GOMPS_OK) return st_enc; /* nothing committed; the buffer is dropped */
    [cb commit];
    id<MTLCommandBuffer> root = cb.rootCommandBuffer;
    [root waitUntilCompleted];
    if (root.status != MTLCommandBufferStatusCompleted) {
        return ctx_fail(s, GOMPS_ERR_DEVICE, "metal: forward: bucket %dx%d: command buffer status %ld: %s", B, S,
                        (long)root.status, nsstr(root.error.localizedDescription));
    }
    memcpy(logits, s.logitsBuf.contents, (size_t)rows * (size_t)m->info.num_labels * sizeof(float));
    return GOMPS_OK;
}

/* The bucket for the next chunk of rem rows of length seq: least padded
 * tokens for the rows left, then fewest chunks. */
static NSUInteger pick_bucket(GompsModel *m, int32_t rem, int32_t seq) {
    NSUInteger best = NSNotFound;
    int64_t best_cost = 0, best_chunks = 0;
    NSUInteger i = 0;
    for (GompsBucket *b in m.buckets) {
        if (b.seq >= seq) {
            const int64_t chunks = (rem + b.batch - 1) / b.batch;
            const int64_t cost = chunks * b.batch * b.seq;
            if (best == NSNotFound || cost < best_cost || (cost == best_cost && chunks < best_chunks)) {
                best = i;
                best_cost = cost;
                best_chunks = chunks;
            }
        }
        i++;
    }
    return best;
}

/* The body of context_forward, inside its autorelease pool. */
static gomps_status forward(gomps_context_t *ctx, int32_t batch, int32_t seq, const int32_t *ids,
                            const int32_t *type_ids, const int32_t *lengths, float *logits) {
    GompsSession *s = (__bridge GompsSession *)(void *)ctx;
    s->lastError[0] = 0;
    GompsModel *m = s.model;
    const gomps_model_info *inf = &m->info;
    if (batch < 1 || batch > inf->max_batch)
        return ctx_fail(s, GOMPS_ERR_INVALID_ARG, "metal: forward: batch %d outside 1..%d", batch, inf->max_batch);
    if (seq < 1 || seq > inf->max_seq)
        return ctx_fail(s, GOMPS_ERR_INVALID_ARG, "metal: forward: seq %d outside 1..%d", seq, inf->max_seq);
    if (!ids || !type_ids || !lengths || !logits)
        return ctx_fail(s, GOMPS_ERR_INVALID_ARG, "metal: forward: a NULL buffer");
    for (int32_t r = 0; r < batch; r++) {
        if (lengths[r] < 1 || lengths[r] > seq)
            return ctx_fail(s, GOMPS_ERR_INVALID_ARG, "metal: forward: row %d: length %d outside 1..%d", r, lengths[r], seq);
        for (int32_t j = 0; j < lengths[r]; j++) {
            const int32_t id = ids[(size_t)r * (size_t)seq + (size_t)j], ty = type_ids[(size_t)r * (size_t)seq + (size_t)j];
            if (id < 0 || id >= inf->vocab_size)
                return ctx_fail(s, GOMPS_ERR_INVALID_ARG, "metal: forward: row %d position %d: id %d outside 0..%d", r, j,
                                id, inf->vocab_size - 1);
            if (ty < 0 || ty >= inf->type_vocab_size)
                return ctx_fail(s, GOMPS_ERR_INVALID_ARG, "metal: forward: row %d position %d: type id %d outside 0..%d",
                                r, j, ty, inf->type_vocab_size - 1);
        }
    }
    gomps_status st = GOMPS_OK;
    for (int32_t r0 = 0; r0 < batch && st == GOMPS_OK;) {
        const NSUInteger bi = pick_bucket(m, batch - r0, seq);
        if (bi == NSNotFound) return ctx_fail(s, GOMPS_ERR_INTERNAL, "metal: forward: no bucket covers seq %d", seq);
        GompsBucket *b = m.buckets[bi];
        const int32_t n = batch - r0 < b.batch ? batch - r0 : b.batch;
        st = session_run(s, b, bi, n, seq, ids + (size_t)r0 * (size_t)seq, type_ids + (size_t)r0 * (size_t)seq,
                         lengths + r0, logits + (size_t)r0 * (size_t)inf->num_labels);
        r0 += n;
    }
    return st;
}

static gomps_status context_forward(gomps_context_t *ctx, int32_t batch, int32_t seq, const int32_t *ids,
                                    const int32_t *type_ids, const int32_t *lengths, float *logits) {
    if (ctx == NULL) return GOMPS_ERR_INVALID_ARG;
    gomps_status st = GOMPS_OK;
    @autoreleasepool {
        @try {
            st = forward(ctx, batch, seq, ids, type_ids, lengths, logits);
        } @catch (NSException *e) {
            GompsSession *s = (__bridge GompsSession *)(void *)ctx;
            st = ctx_fail(s, GOMPS_ERR_DEVICE, "metal: forward: %s: %s", nsstr(e.name), nsstr(e.reason));
        }
    }
    return st;
}

/* ---- capabilities and the table ---- */

/* One forward at a time per model (encoding is serialized) and every row
 * computed at its bucket's shape: one instance, padded; the thread budget
 * goes to that instance (this backend runs no CPU threads of its own). */
static gomps_status capabilities(int32_t threads, gomps_capabilities *out) {
    if (out == NULL || out->struct_size < sizeof(gomps_capabilities)) return GOMPS_ERR_INVALID_ARG;
    gomps_capabilities c = {0};
    c.struct_size = sizeof c;
    c.padded = 1;
    c.max_batch = 4096;
    c.max_seq = 0;
    c.instances = 1;
    c.threads = threads > 0 ? threads : 1;
    c.memory_in_use = -1;
    @autoreleasepool {
        @try {
            id<MTLDevice> dev = usable_device(c.unusable, sizeof c.unusable);
            if (dev != nil) {
                c.usable = 1;
                c.precisions = GOMPS_PRECISION_BIT(GOMPS_PRECISION_F32) | GOMPS_PRECISION_BIT(GOMPS_PRECISION_F16);
                c.memory_in_use = (int64_t)dev.currentAllocatedSize;
                isa_name(dev, c.isa, sizeof c.isa);
            }
        } @catch (NSException *e) {
            c.usable = 0;
            snprintf(c.unusable, sizeof c.unusable, "metal: %s: %s", nsstr(e.name), nsstr(e.reason));
        }
    }
    memcpy(out, &c, sizeof c);
    return GOMPS_OK;
}

static const gomps_backend metal_backend = {
    .struct_size = sizeof(gomps_backend),
    .abi_version = GOMPS_ABI_VERSION,
    .name = "metal",
    .version = "Objective-C over MPSGraph, macOS 13+",
    .capabilities = capabilities,
    .model_init = abi_model_init,
    .model_free = model_free,
    .model_info = model_info,
    .last_init_error = last_init_error,
    .context_init = context_init,
    .context_free = context_free,
    .context_set_threads = context_set_threads,
    .context_forward = context_forward,
    .context_last_error = context_last_error,
};

const gomps_backend *gomps_backend_metal(void) { return &metal_backend; }
