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
#include "wfile/gomps-wfile.h"
#include "gomps.h"

#define GOMPS_ERR_LEN 1024

/* One (batch, seq) shape the model is compiled for. */
@interface GompsBucket : NSObject
@property(nonatomic) int32_t batch;
@property(nonatomic) int32_t seq;
@property(nonatomic, strong) MPSGraphTensor *ids;    /* int32 [B, S]; nil on the kernel path */
@property(nonatomic, strong) MPSGraphTensor *types;  /* int32 [B, S]; nil on the kernel path */
@property(nonatomic, strong) MPSGraphTensor *hidden; /* dtype [B*S, H]; nil on the graph path */
@property(nonatomic, strong) MPSGraphTensor *mask;   /* f32 [B, S] additive mask */
@property(nonatomic, strong) MPSGraphTensor *logits; /* f32 [B, 1] */
@property(nonatomic, strong) MPSGraphExecutable *exe;
/* inputs in exe.feedTensors order: weight slots hold the model's tensor data,
 * I/O slots NSNull; the indices name the I/O slots (-1 = absent). */
@property(nonatomic, strong) NSArray *inputTemplate;
@property(nonatomic) NSInteger idsSlot, typesSlot, hiddenSlot, maskSlot;
@property(nonatomic) double ms;
@end

@interface GompsModel : NSObject {
  @public
    gomps_wfile file;
    gomps_model_info info;
    gomps_metal_stats stats;
    pthread_mutex_t encodeLock;
    int lockEncode;
    uint32_t kernels;
    MPSDataType dtype; /* compute dtype: Float32 or Float16 */
    size_t elemSize;
}
@property(nonatomic, strong) id<MTLDevice> device;
@property(nonatomic, strong) NSArray<id<MTLBuffer>> *weightBuffers;      /* one per file tensor */
@property(nonatomic, strong) NSArray<MPSGraphTensor *> *weightTensors;   /* placeholders        */
@property(nonatomic, strong) NSArray<MPSGraphTensorData *> *weightData;  /* feeds               */
@property(nonatomic, strong) MPSGraph *graph;
@property(nonatomic, strong) NSArray<GompsBucket *> *buckets;
@property(nonatomic, strong) id<MTLComputePipelineState> embedPipeline;
@property(nonatomic) int32_t maxBucketBatch;
@property(nonatomic) int64_t maxBucketTokens;
@end

@interface GompsSession : NSObject {
  @public
    char lastError[GOMPS_ERR_LEN];
}
@property(nonatomic, strong) GompsModel *model;
@property(nonatomic, strong) id<MTLCommandQueue> queue;
@property(nonatomic, strong) id<MTLBuffer> idsBuf, typesBuf, maskBuf, logitsBuf, hiddenBuf;
@property(nonatomic, strong) NSArray<NSArray<MPSGraphTensorData *> *> *inputs;  /* per bucket */
@property(nonatomic, strong) NSArray<NSArray<MPSGraphTensorData *> *> *results; /* per bucket */
@end

/* graph.m: adds bucket b's subgraph (static shapes) to m.graph, over the
 * shared weight placeholders; fills b's tensors. */
void gomps_graph_add_bucket(GompsModel *m, GompsBucket *b);

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
