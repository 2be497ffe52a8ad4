//go:build darwin && cgo

/*
 * kernels.m: our Metal kernels on the host side: the shader library
 * (compiled from the source the Go package hands over, fast-math off, MSL
 * 3.0), pipelines by name, and gomps_metal_op_compare, which runs one op as
 * our kernel and as the equivalent MPSGraph for `gomps kernels`.
 */
#import "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static char *shader_src;
static size_t shader_len;
static id<MTLLibrary> lib_cached;
static id<MTLDevice> lib_device;

void gomps_metal_set_shader_source(const char *src, size_t len) {
    char *copy = NULL;
    if (src != NULL) {
        copy = malloc(len + 1);
        if (copy == NULL) return; /* the kernels stay unavailable; init says so */
        memcpy(copy, src, len);
        copy[len] = 0;
    }
    pthread_mutex_lock(&lib_mu);
    free(shader_src);
    shader_src = copy;
    shader_len = copy ? len : 0;
    lib_cached = nil;
    lib_device = nil;
    pthread_mutex_unlock(&lib_mu);
}

int gomps_metal_kernel_name(char *buf, size_t n, const char *op, int32_t precision, const char *variant) {
    const char *dt = precision == GOMPS_PRECISION_F32 ? "f32" : precision == GOMPS_PRECISION_F16 ? "f16" : NULL;
    if (dt == NULL || op == NULL) return -1;
    if (variant != NULL && variant[0] != 0) return snprintf(buf, n, "%s_%s_%s", op, dt, variant);
    return snprintf(buf, n, "%s_%s", op, dt);
}

id<MTLLibrary> gomps_metal_library(id<MTLDevice> dev, char *err, size_t errlen) {
    pthread_mutex_lock(&lib_mu);
    id<MTLLibrary> lib = (lib_device == dev) ? lib_cached : nil;
    if (lib == nil) {
        if (shader_src == NULL) {
            snprintf(err, errlen, "metal: kernels: no shader source was set (the Go package github.com/gomps/gomps/metal "
                                  "sets it at init)");
        } else {
            MTLCompileOptions *opts = [MTLCompileOptions new];
            opts.fastMathEnabled = NO;
            opts.languageVersion = MTLLanguageVersion3_0;
            NSError *e = nil;
            NSString *src = [[NSString alloc] initWithBytes:shader_src length:shader_len encoding:NSUTF8StringEncoding];
            lib = src ? [dev newLibraryWithSource:src options:opts error:&e] : nil;
            if (lib == nil) {
                snprintf(err, errlen, "metal: kernels: compiling the shader library: %s",
                         e ? e.localizedDescription.UTF8String : "source is not UTF-8");
            } else {
                lib_cached = lib;
                lib_device = dev;
            }
        }
    }
    pthread_mutex_unlock(&lib_mu);
    return lib;
}

id<MTLComputePipelineState> gomps_metal_pipeline(id<MTLDevice> dev, const char *name, char *err, size_t errlen) {
    id<MTLLibrary> lib = gomps_metal_library(dev, err, errlen);
    if (lib == nil) return nil;
    id<MTLFunction> fn = [lib newFunctionWithName:[NSString stringWithUTF8String:name]];
    if (fn == nil) {
        snprintf(err, errlen, "metal: kernels: no kernel named %s in the library", name);
        return nil;
    }
    NSError *e = nil;
    id<MTLComputePipelineState> p = [dev newComputePipelineStateWithFunction:fn error:&e];
    if (p == nil) {
        snprintf(err, errlen, "metal: kernels: pipeline %s: %s", name, e ? e.localizedDescription.UTF8String : "failed");
        return nil;
    }
    if (p.maxTotalThreadsPerThreadgroup < GOMPS_ROW_THREADS) {
        snprintf(err, errlen, "metal: kernels: %s allows %lu threads per threadgroup, the kernels need %d", name,
                 (unsigned long)p.maxTotalThreadsPerThreadgroup, GOMPS_ROW_THREADS);
        return nil;
    }
    return p;
}

/* ---- op compare ---- */

typedef struct op_env {
    id<MTLDevice> dev;
    MPSDataType dt;
    size_t es;
    uint64_t seed;
} op_env;

static float rnd(op_env *e, float lo, float hi) {
    e->seed = e->seed * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((e->seed >> 40) & 0xffffffu) / 16777216.0f;
}

static id<MTLBuffer> rnd_buf(op_env *e, size_t n, float lo, float hi) {
    id<MTLBuffer> b = [e->dev newBufferWithLength:n * e->es options:MTLResourceStorageModeShared];
    for (size_t i = 0; b && i < n; i++) {
        const float v = rnd(e, lo, hi);
        if (e->es == 4) ((float *)b.contents)[i] = v;
        else ((uint16_t *)b.contents)[i] = gomps_f32_to_f16(v);
    }
    return b;
}

static double elem(op_env *e, id<MTLBuffer> b, size_t i) {
    return e->es == 4 ? (double)((const float *)b.contents)[i] : (double)gomps_f16_to_f32(((const uint16_t *)b.contents)[i]);
}

static MPSGraphTensor *ph(MPSGraph *g, NSMutableDictionary *feeds, NSMutableDictionary *data, id<MTLBuffer> buf,
                          MPSShape *shape, MPSDataType dt) {
    MPSGraphTensor *t = [g placeholderWithShape:shape dataType:dt name:nil];
    feeds[t] = [[MPSGraphShapedType alloc] initWithShape:shape dataType:dt];
    data[t] = [[MPSGraphTensorData alloc] initWithMTLBuffer:buf shape:shape dataType:dt];
    return t;
}

/* LayerNorm over the last axis in fp32, as graph.m does it */
static MPSGraphTensor *graph_ln(MPSGraph *g, MPSGraphTensor *x, MPSGraphTensor *gamma, MPSGraphTensor *beta, double eps,
                                MPSDataType dt) {
    MPSGraphTensor *xf = [g castTensor:x toType:MPSDataTypeFloat32 name:nil];
    MPSGraphTensor *mean = [g meanOfTensor:xf axes:@[ @1 ] name:nil];
    MPSGraphTensor *d = [g subtractionWithPrimaryTensor:xf secondaryTensor:mean name:nil];
    MPSGraphTensor *var = [g meanOfTensor:[g squareWithTensor:d name:nil] axes:@[ @1 ] name:nil];
    MPSGraphTensor *inv = [g reverseSquareRootWithTensor:[g additionWithPrimaryTensor:var
                                                                      secondaryTensor:[g constantWithScalar:eps dataType:MPSDataTypeFloat32]
                                                                                 name:nil]
                                                    name:nil];
    MPSGraphTensor *y = [g multiplicationWithPrimaryTensor:d secondaryTensor:inv name:nil];
    y = [g multiplicationWithPrimaryTensor:y secondaryTensor:[g castTensor:gamma toType:MPSDataTypeFloat32 name:nil] name:nil];
    y = [g additionWithPrimaryTensor:y secondaryTensor:[g castTensor:beta toType:MPSDataTypeFloat32 name:nil] name:nil];
    return [g castTensor:y toType:dt name:nil];
}

static gomps_status op_compare(const char *op, int32_t precision, int32_t rows, int32_t cols, int32_t iters,
                               gomps_metal_op_result *out, char *err, size_t errlen) {
    op_env e = {MTLCreateSystemDefaultDevice(), precision == GOMPS_PRECISION_F16 ? MPSDataTypeFloat16 : MPSDataTypeFloat32,
                precision == GOMPS_PRECISION_F16 ? 2u : 4u, 20261127u};
    if (e.dev == nil || !MPSSupportsMTLDevice(e.dev)) {
        snprintf(err, errlen, "metal: op_compare: no usable Metal device");
        return GOMPS_ERR_DEVICE;
    }
    char name[64];
    if (gomps_metal_kernel_name(name, sizeof name, op, precision, NULL) < 0) {
        snprintf(err, errlen, "metal: op_compare: precision %d has no kernels (f32 = 0, f16 = 2)", precision);
        return GOMPS_ERR_UNSUPPORTED;
    }
    id<MTLComputePipelineState> pipe = gomps_metal_pipeline(e.dev, name, err, errlen);
    if (pipe == nil) return GOMPS_ERR_DEVICE;
    id<MTLCommandQueue> q = [e.dev newCommandQueue];
    MPSGraph *g = [MPSGraph new];
    NSMutableDictionary *feeds = [NSMutableDictionary dictionary], *data = [NSMutableDictionary dictionary];
    const size_t n = (size_t)rows * (size_t)cols;
    id<MTLBuffer> kout = [e.dev newBufferWithLength:n * e.es options:MTLResourceStorageModeShared];
    id<MTLBuffer> gout = [e.dev newBufferWithLength:n * e.es options:MTLResourceStorageModeShared];
    MPSShape *rc = @[ @(rows), @(cols) ];
    MPSGraphTensor *target = nil;
    void (^encode)(id<MTLComputeCommandEncoder>) = nil;
    const float eps = 1e-12f;

    if (strcmp(op, "layer_norm") == 0) {
        id<MTLBuffer> x = rnd_buf(&e, n, -3, 5), ga = rnd_buf(&e, (size_t)cols, 0.5f, 1.5f), be = rnd_buf(&e, (size_t)cols, -0.5f, 0.5f);
        target = graph_ln(g, ph(g, feeds, data, x, rc, e.dt), ph(g, feeds, data, ga, @[ @(cols) ], e.dt),
                          ph(g, feeds, data, be, @[ @(cols) ], e.dt), eps, e.dt);
        gomps_args_layer_norm a = {(gomps_u32)rows, (gomps_u32)cols, eps};
        encode = ^(id<MTLComputeCommandEncoder> enc) {
          [enc setBytes:&a length:sizeof a atIndex:0];
          [enc setBuffer:x offset:0 atIndex:1];
          [enc setBuffer:ga offset:0 atIndex:2];
          [enc setBuffer:be offset:0 atIndex:3];
          [enc setBuffer:kout offset:0 atIndex:4];
          [enc dispatchThreadgroups:MTLSizeMake((NSUInteger)rows, 1, 1) threadsPerThreadgroup:MTLSizeMake(GOMPS_ROW_THREADS, 1, 1)];
        };
    } else if (strcmp(op, "masked_softmax") == 0) {
        id<MTLBuffer> x = rnd_buf(&e, n, -8, 8);
        const int32_t len = cols > 4 ? cols * 3 / 4 : cols;
        id<MTLBuffer> lens = [e.dev newBufferWithBytes:&len length:sizeof len options:MTLResourceStorageModeShared];
        id<MTLBuffer> maskb = [e.dev newBufferWithLength:(size_t)cols * 4 options:MTLResourceStorageModeShared];
        for (int32_t j = 0; j < cols; j++) ((float *)maskb.contents)[j] = j < len ? 0.0f : GOMPS_MASK_VALUE;
        const float scale = 1.0f / sqrtf(32.0f);
        MPSGraphTensor *s = [g castTensor:ph(g, feeds, data, x, rc, e.dt) toType:MPSDataTypeFloat32 name:nil];
        s = [g multiplicationWithPrimaryTensor:s secondaryTensor:[g constantWithScalar:scale dataType:MPSDataTypeFloat32] name:nil];
        s = [g additionWithPrimaryTensor:s secondaryTensor:ph(g, feeds, data, maskb, @[ @1, @(cols) ], MPSDataTypeFloat32) name:nil];
        target = [g castTensor:[g softMaxWithTensor:s axis:1 name:nil] toType:e.dt name:nil];
        gomps_args_masked_softmax a = {(gomps_u32)rows, (gomps_u32)cols, (gomps_u32)rows, scale, GOMPS_MASK_VALUE};
        encode = ^(id<MTLComputeCommandEncoder> enc) {
          [enc setBytes:&a length:sizeof a atIndex:0];
          [enc setBuffer:x offset:0 atIndex:1];
          [enc setBuffer:lens offset:0 atIndex:2];
          [enc setBuffer:kout offset:0 atIndex:3];
          [enc dispatchThreadgroups:MTLSizeMake((NSUInteger)rows, 1, 1) threadsPerThreadgroup:MTLSizeMake(GOMPS_ROW_THREADS, 1, 1)];
        };
    } else if (strcmp(op, "bias_gelu") == 0) {
        id<MTLBuffer> x = rnd_buf(&e, n, -6, 6), bias = rnd_buf(&e, (size_t)cols, -1, 1);
        MPSGraphTensor *v = [g additionWithPrimaryTensor:ph(g, feeds, data, x, rc, e.dt)
                                         secondaryTensor:ph(g, feeds, data, bias, @[ @(cols) ], e.dt)
                                                    name:nil];
        v = [g castTensor:v toType:MPSDataTypeFloat32 name:nil];
        MPSGraphTensor *er = [g erfWithTensor:[g multiplicationWithPrimaryTensor:v
                                                                 secondaryTensor:[g constantWithScalar:0.70710678118654752 dataType:MPSDataTypeFloat32]
                                                                            name:nil]
                                         name:nil];
        MPSGraphTensor *y = [g multiplicationWithPrimaryTensor:[g multiplicationWithPrimaryTensor:v
                                                                                  secondaryTensor:[g constantWithScalar:0.5 dataType:MPSDataTypeFloat32]
                                                                                             name:nil]
                                               secondaryTensor:[g additionWithPrimaryTensor:er
                                                                            secondaryTensor:[g constantWithScalar:1.0 dataType:MPSDataTypeFloat32]
                                                                                       name:nil]
                                                          name:nil];
        target = [g castTensor:y toType:e.dt name:nil];
        gomps_args_bias_gelu a = {(gomps_u32)n, (gomps_u32)cols};
        const NSUInteger groups = (n + GOMPS_ELEM_THREADS - 1) / GOMPS_ELEM_THREADS;
        encode = ^(id<MTLComputeCommandEncoder> enc) {
          [enc setBytes:&a length:sizeof a atIndex:0];
          [enc setBuffer:x offset:0 atIndex:1];
          [enc setBuffer:bias offset:0 atIndex:2];
          [enc setBuffer:kout offset:0 atIndex:3];
          [enc dispatchThreadgroups:MTLSizeMake(groups, 1, 1) threadsPerThreadgroup:MTLSizeMake(GOMPS_ELEM_THREADS, 1, 1)];
        };
    } else if (strcmp(op, "embed") == 0) {
        /* rows tokens of one sequence, hidden = cols, a 1000-word vocabulary */
        const int32_t V = 1000, T = 2;
        if (cols > GOMPS_ROW_THREADS * GOMPS_EMBED_MAX_PER_THREAD) {
            snprintf(err, errlen, "metal: op_compare: embed: hidden %d above %d", cols, GOMPS_ROW_THREADS * GOMPS_EMBED_MAX_PER_THREAD);
            return GOMPS_ERR_UNSUPPORTED;
        }
        id<MTLBuffer> word = rnd_buf(&e, (size_t)V * (size_t)cols, -1, 1), pos = rnd_buf(&e, n, -1, 1),
                      tt = rnd_buf(&e, (size_t)T * (size_t)cols, -1, 1), ga = rnd_buf(&e, (size_t)cols, 0.5f, 1.5f),
                      be = rnd_buf(&e, (size_t)cols, -0.5f, 0.5f);
        id<MTLBuffer> ids = [e.dev newBufferWithLength:(size_t)rows * 4 options:MTLResourceStorageModeShared];
        id<MTLBuffer> tids = [e.dev newBufferWithLength:(size_t)rows * 4 options:MTLResourceStorageModeShared];
        for (int32_t r = 0; r < rows; r++) {
            ((int32_t *)ids.contents)[r] = (int32_t)(rnd(&e, 0, 1) * (V - 1));
            ((int32_t *)tids.contents)[r] = r >= rows / 2;
        }
        MPSGraphTensor *gi = ph(g, feeds, data, ids, @[ @(rows) ], MPSDataTypeInt32);
        MPSGraphTensor *gt = ph(g, feeds, data, tids, @[ @(rows) ], MPSDataTypeInt32);
        MPSGraphTensor *we = [g gatherWithUpdatesTensor:ph(g, feeds, data, word, @[ @(V), @(cols) ], e.dt) indicesTensor:gi axis:0 batchDimensions:0 name:nil];
        MPSGraphTensor *te = [g gatherWithUpdatesTensor:ph(g, feeds, data, tt, @[ @(T), @(cols) ], e.dt) indicesTensor:gt axis:0 batchDimensions:0 name:nil];
        MPSGraphTensor *sum = [g additionWithPrimaryTensor:[g castTensor:we toType:MPSDataTypeFloat32 name:nil]
                                           secondaryTensor:[g castTensor:te toType:MPSDataTypeFloat32 name:nil]
                                                      name:nil];
        sum = [g additionWithPrimaryTensor:sum secondaryTensor:[g castTensor:ph(g, feeds, data, pos, rc, e.dt) toType:MPSDataTypeFloat32 name:nil] name:nil];
        target = graph_ln(g, sum, ph(g, feeds, data, ga, @[ @(cols) ], e.dt), ph(g, feeds, data, be, @[ @(cols) ], e.dt), eps, e.dt);
        gomps_args_embed a = {(gomps_u32)rows, (gomps_u32)rows, (gomps_u32)cols, (gomps_u32)V, (gomps_u32)T, (gomps_u32)rows, eps};
        encode = ^(id<MTLComputeCommandEncoder> enc) {
          [enc setBytes:&a length:sizeof a atIndex:0];
          [enc setBuffer:ids offset:0 atIndex:1];
          [enc setBuffer:tids offset:0 atIndex:2];
          [enc setBuffer:word offset:0 atIndex:3];
          [enc setBuffer:pos offset:0 atIndex:4];
          [enc setBuffer:tt offset:0 atIndex:5];
          [enc setBuffer:ga offset:0 atIndex:6];
          [enc setBuffer:be offset:0 atIndex:7];
          [enc setBuffer:kout offset:0 atIndex:8];
          [enc dispatchThreadgroups:MTLSizeMake((NSUInteger)rows, 1, 1) threadsPerThreadgroup:MTLSizeMake(GOMPS_ROW_THREADS, 1, 1)];
        };
    } else {
        snprintf(err, errlen, "metal: op_compare: unknown op \"%s\" (embed, layer_norm, masked_softmax, bias_gelu)", op);
        return GOMPS_ERR_INVALID_ARG;
    }

    MPSGraphCompilationDescriptor *cd = [MPSGraphCompilationDescriptor new];
    cd.waitForCompilationCompletion = YES;
    MPSGraphExecutable *exe = [g compileWithDevice:[MPSGraphDevice deviceWithMTLDevice:e.dev]
                                             feeds:feeds
                                     targetTensors:@[ target ]
                                  targetOperations:nil
                             compilationDescriptor:cd];
    NSMutableArray *inputs = [NSMutableArray array];
    for (MPSGraphTensor *t in exe.feedTensors) [inputs addObject:data[t]];
    NSArray *results = @[ [[MPSGraphTensorData alloc] initWithMTLBuffer:gout shape:target.shape dataType:e.dt] ];

    double kms = 0, gms = 0;
    for (int32_t it = -1; it < iters; it++) { /* iteration -1 warms both paths */
        double t0 = gomps_now_ms();
        id<MTLCommandBuffer> cb = [q commandBuffer];
        id<MTLComputeCommandEncoder> enc = [cb computeCommandEncoder];
        [enc setComputePipelineState:pipe];
        encode(enc);
        [enc endEncoding];
        [cb commit];
        [cb waitUntilCompleted];
        if (cb.status != MTLCommandBufferStatusCompleted) {
            snprintf(err, errlen, "metal: op_compare: %s: %s", name, cb.error.localizedDescription.UTF8String);
            return GOMPS_ERR_DEVICE;
        }
        double t1 = gomps_now_ms();
        MPSCommandBuffer *mcb = [MPSCommandBuffer commandBufferFromCommandQueue:q];
        [exe encodeToCommandBuffer:mcb inputsArray:inputs resultsArray:results executionDescriptor:nil];
        [mcb commit];
        id<MTLCommandBuffer> root = mcb.rootCommandBuffer;
        [root waitUntilCompleted];
        if (root.status != MTLCommandBufferStatusCompleted) {
            snprintf(err, errlen, "metal: op_compare: %s graph: %s", op, root.error.localizedDescription.UTF8String);
            return GOMPS_ERR_DEVICE;
        }
        double t2 = gomps_now_ms();
        if (it >= 0) {
            kms += t1 - t0;
            gms += t2 - t1;
        }
    }
    double num = 0, den = 0, maxd = 0;
    for (size_t i = 0; i < n; i++) {
        const double k = elem(&e, kout, i), r = elem(&e, gout, i), d = fabs(k - r);
        if (!(d <= maxd)) maxd = d; /* NaN sticks */
        num += (k - r) * (k - r);
        den += r * r;
    }
    out->kernel_ms = iters > 0 ? kms / iters : 0;
    out->graph_ms = iters > 0 ? gms / iters : 0;
    out->max_abs_diff = maxd;
    out->nmse = den > 0 ? num / den : num;
    return GOMPS_OK;
}

gomps_status gomps_metal_op_compare(const char *op, int32_t precision, int32_t rows, int32_t cols, int32_t iters,
                                    gomps_metal_op_result *out, char *err, size_t errlen) {
    char local[GOMPS_ERR_LEN];
    if (err == NULL || errlen == 0) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = 0;
    if (op == NULL || out == NULL || rows < 1 || cols < 1 || iters < 0 || (int64_t)rows * cols > (1 << 28)) {
        snprintf(err, errlen, "metal: op_compare: bad arguments");
        return GOMPS_ERR_INVALID_ARG;
    }
    if (strcmp(op, "embed") != 0 && strcmp(op, "layer_norm") != 0 && strcmp(op, "masked_softmax") != 0 &&
        strcmp(op, "bias_gelu") != 0) {
        snprintf(err, errlen, "metal: op_compare: unknown op \"%s\" (embed, layer_norm, masked_softmax, bias_gelu)", op);
        return GOMPS_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    gomps_status st;
    @autoreleasepool {
        @try {
            st = op_compare(op, precision, rows, cols, iters, out, err, errlen);
        } @catch (NSException *e) {
            snprintf(err, errlen, "metal: op_compare: %s: %s", e.name.UTF8String, e.reason.UTF8String);
            st = GOMPS_ERR_DEVICE;
        }
    }
    return st;
}
