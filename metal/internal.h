/*
 * internal.h: declarations shared by the Objective-C files of the Metal
 * backend. Not part of any interface.
 */
#ifndef GOMPS_METAL_INTERNAL_H
#define GOMPS_METAL_INTERNAL_H

#import <Foundation/Foundation.h>
#import <Metal/Metal.h>
#import <MetalPerformanceShaders/MetalPerformanceShaders.h>
#import <MetalPerformanceShadersGraph/MetalPerformanceShadersGraph.h>

#include <pthread.h>

#include "gomps-args.h"
#include "gomps-half.h"
#include "gomps-metal.h"
#include "gomps-plan.h"
#include "wfile/gomps-wfile.h"
#include "gomps.h"

#define GOMPS_ERR_LEN 1024

/* One step of a bucket's forward (gomps-plan.h): an MPSGraph segment compiled
 * for the bucket's shape, or one of our kernels (exe nil). */
@interface GompsStep : NSObject
@property(nonatomic) NSInteger index; /* into the model's plan steps */
@property(nonatomic, strong) MPSGraphExecutable *exe;
/* inputs in exe.feedTensors order: weight slots hold the model's tensor
 * data, buffer slots NSNull; ioValue[slot] names the plan value a buffer
 * slot reads (-1 for weights). */
@property(nonatomic, strong) NSArray *inputTemplate;
@property(nonatomic, strong) NSArray<NSNumber *> *ioValue;
/* plan values of the results, in exe targetTensors order */
@property(nonatomic, strong) NSArray<NSNumber *> *resultValues;
@end

/* One (batch, seq) shape the model is compiled for. */
@interface GompsBucket : NSObject
@property(nonatomic) int32_t batch;
@property(nonatomic) int32_t seq;
@property(nonatomic, strong) NSArray<GompsStep *> *steps; /* the plan's steps, in order */
@property(nonatomic) double ms;
@end

@interface GompsModel : NSObject {
  @public
    gomps_wfile file;
    gomps_model_info info; /* filled by model_init; num_labels first, from the file */
    gomps_metal_stats stats;
    pthread_mutex_t encodeLock;
    int lockEncode;
    uint32_t kernels;
    MPSDataType dtype; /* compute dtype: Float32 or Float16 */
    size_t elemSize;
    gomps_plan *plan; /* the forward's steps and buffers; malloc'd, freed in dealloc */
    uint64_t poolBytes[GOMPS_BUF_NCLASS]; /* bytes of one buffer of each class, largest bucket */
}
@property(nonatomic, strong) id<MTLDevice> device;
@property(nonatomic, strong) NSArray<id<MTLBuffer>> *weightBuffers;      /* one per file tensor */
@property(nonatomic, strong) NSArray<MPSGraphTensor *> *weightTensors;   /* placeholders        */
@property(nonatomic, strong) NSArray<MPSGraphTensorData *> *weightData;  /* feeds               */
@property(nonatomic, strong) MPSGraph *graph;
@property(nonatomic, strong) NSArray<GompsBucket *> *buckets;
@property(nonatomic, strong) id<MTLComputePipelineState> embedPipeline, layerNormPipeline, softmaxPipeline,
    biasGeluPipeline; /* nil unless selected */
@property(nonatomic) int32_t maxBucketBatch;
@property(nonatomic) int64_t maxBucketTokens;
@end

@interface GompsSession : NSObject {
  @public
    char lastError[GOMPS_ERR_LEN];
    int64_t bytes; /* of its buffers: the model info's context_bytes */
}
@property(nonatomic, strong) GompsModel *model;
@property(nonatomic, strong) id<MTLCommandQueue> queue;
@property(nonatomic, strong) id<MTLBuffer> idsBuf, typesBuf, maskBuf, lengthsBuf, logitsBuf;
/* the plan's intermediate buffers: pools[cls][i], private storage, sized for
 * the largest bucket (empty arrays for the I/O classes) */
@property(nonatomic, strong) NSArray<NSArray<id<MTLBuffer>> *> *pools;
/* per bucket, per step: the inputs and results arrays of a segment's
 * executable (NSNull for kernel steps) */
@property(nonatomic, strong) NSArray<NSArray *> *inputs;
@property(nonatomic, strong) NSArray<NSArray *> *results;
@end

/* graph.m: adds bucket b's segments (static shapes; one per graph step of
 * m->plan) to m.graph, over the shared weight placeholders, and compiles each
 * into b.steps[i].exe. Returns a status and writes err on failure. */
gomps_status gomps_graph_build_bucket(GompsModel *m, GompsBucket *b, MPSGraphDevice *dev,
                                      MPSGraphCompilationDescriptor *cd, char *err, size_t errlen);

/* graph.m: the shape and dtype of plan value v's buffer view for bucket b. */
MPSShape *gomps_graph_value_shape(GompsModel *m, GompsBucket *b, int v);
MPSDataType gomps_graph_value_dtype(GompsModel *m, int v);

/* graph.m: the default bucket set, clamped to (max_batch, max_seq), or the
 * parsed buckets string; returns a status and writes err on failure. */
gomps_status gomps_buckets_resolve(const char *spec, int32_t max_batch, int32_t max_seq,
                                   NSMutableArray<GompsBucket *> *out, char *err, size_t errlen);

/* kernels.m: the compiled shader library (once per device and process), or
 * nil with err set. */
id<MTLLibrary> gomps_metal_library(id<MTLDevice> dev, char *err, size_t errlen);
id<MTLComputePipelineState> gomps_metal_pipeline(id<MTLDevice> dev, const char *name, char *err, size_t errlen);


double gomps_now_ms(void);

#endif /* GOMPS_METAL_INTERNAL_H */
