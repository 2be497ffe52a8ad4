//go:build darwin && cgo

/*
 * gpu-stats.m: gomps_metal_gpu_allocated (gomps-metal.h), the GPU memory row
 * of the bench report. Metal has no public API for GPU utilization, so the
 * report's utilization row stays n/a (metal/gpu.go).
 */
#include <stdio.h>

#include "internal.h"

gomps_status gomps_metal_gpu_allocated(uint64_t *bytes, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (bytes == NULL) {
        if (err && errlen) snprintf(err, errlen, "metal: gpu allocated: bytes is NULL");
        return GOMPS_ERR_INVALID_ARG;
    }
    *bytes = 0;
    @autoreleasepool {
        @try {
            id<MTLDevice> dev = MTLCreateSystemDefaultDevice();
            if (dev == nil) {
                if (err && errlen) snprintf(err, errlen, "metal: gpu allocated: no Metal device");
                return GOMPS_ERR_DEVICE;
            }
            *bytes = (uint64_t)dev.currentAllocatedSize;
            return GOMPS_OK;
        } @catch (NSException *e) {
            if (err && errlen)
                snprintf(err, errlen, "metal: gpu allocated: %s: %s", e.name.UTF8String, e.reason.UTF8String);
            return GOMPS_ERR_DEVICE;
        }
    }
}
