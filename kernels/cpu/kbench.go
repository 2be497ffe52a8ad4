package cpu

/*
#include <stdlib.h>
#include "kbench.h"
#include "../gomps.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"
)

// Kernel identifiers of the microbenchmarks, in the forward pass's order.
const (
	KernelEmbeddings = int(C.KB_EMBEDDINGS)
	KernelQKV        = int(C.KB_QKV)
	KernelAttention  = int(C.KB_ATTENTION)
	KernelSoftmax    = int(C.KB_SOFTMAX)
	KernelAttnOut    = int(C.KB_ATTN_OUT)
	KernelLayerNorm  = int(C.KB_LAYERNORM)
	KernelFFNUp      = int(C.KB_FFN_UP)
	KernelGELU       = int(C.KB_GELU)
	KernelFFNDown    = int(C.KB_FFN_DOWN)
	KernelPooler     = int(C.KB_POOLER)
	KernelConvert    = int(C.KB_CONVERT)
	KernelPeakMatmul = int(C.KB_PEAK_MATMUL)
	// Each attention kernel GOMPS_CPU_ATTENTION selects, and the old softmax,
	// measured where available, beside the default.
	KernelAttentionAVX512 = int(C.KB_ATTENTION_AVX512)
	KernelAttentionAMX    = int(C.KB_ATTENTION_AMX)
	KernelAttentionBF16DP = int(C.KB_ATTENTION_AVX512BF16)
	KernelAttentionSGEMM  = int(C.KB_ATTENTION_SGEMM)
	KernelSoftmaxC        = int(C.KB_SOFTMAX_C)
)

// KernelShape is the model shape the kernels run at.
type KernelShape struct {
	Hidden, Heads, Intermediate, Vocab int
}

// MiniLMShape is cross-encoder/ms-marco-MiniLM-L-6-v2's: H 384, 12 heads of
// 32, FFN 1536, vocabulary 30522.
var MiniLMShape = KernelShape{Hidden: 384, Heads: 12, Intermediate: 1536, Vocab: 30522}

// KernelBenchConfig sets up a microbenchmark run.
type KernelBenchConfig struct {
	Shape     KernelShape
	Batch     int   // rows (pairs) per call
	Seqs      []int // tokens per row, one set of kernels per value
	Threads   int   // OpenMP threads, at least 1
	Precision int   // PrecisionF32 or PrecisionBF16 (linear layers)
	// Each kernel runs 2 untimed calls, then until MinTime has passed and
	// MinReps calls are timed (defaults 200ms and 5).
	MinTime time.Duration
	MinReps int
	Seed    uint64
}

// KernelResult is one kernel at one sequence length.
type KernelResult struct {
	Kernel   int
	Name     string // "qkv", "attention", ...
	What     string // the call measured
	Seq      int
	Rows     int // tokens in the call (batch x seq), or the rows it covers
	Threads  int // threads the call runs on, as the backend calls it
	Best     time.Duration
	Median   time.Duration
	Reps     int
	FLOPs    float64 // per call; 0 for memory-bound kernels
	Bytes    float64 // bytes read + written per call; 0 for compute kernels
	Rate     float64 // GFLOP/s (FLOPs > 0) or GB/s, at the best time
	Unit     string  // "GFLOP/s" or "GB/s"
	PeakName string  // which measured peak Rate is compared with
	PeakFrac float64 // Rate / that peak
}

// Peaks are the machine's ceilings measured in the same run.
type Peaks struct {
	FMA       float64 // GFLOP/s of the FMA register loop on Threads threads
	FMAISA    string
	Matmul    float64 // GFLOP/s of the oneDNN matmul at the reference shape, in the run's precision
	MatmulWhy string  // the shape
	Copy      float64 // GB/s (read + write) of a parallel memcpy of 64 MiB
}

// KernelBench is a full run.
type KernelBench struct {
	Config  KernelBenchConfig
	Peaks   Peaks
	Results []KernelResult
}

// kernelInfo describes kernel k at (B, L) of shape s: its name, the call,
// the threads it runs on, and its work.
func kernelInfo(k int, s KernelShape, B, L, threads int, bf16 bool) (name, what string, thr int, flops, bytes float64) {
	H, I, nh := float64(s.Hidden), float64(s.Intermediate), float64(s.Heads)
	rows := float64(B * L)
	dt := "f32"
	if bf16 {
		dt = "bf16 (AMX or AVX512-BF16)"
	}
	thr = threads
	switch k {
	case KernelEmbeddings:
		return "embeddings", "cpu_embeddings_packed: word + position + type, LayerNorm", thr, 0, rows * H * 4 * 4
	case KernelQKV:
		out := ""
		if bf16 {
			out = " (bf16 out where the attention kernel reads bf16)"
		}
		return "qkv", fmt.Sprintf("oneDNN matmul %d->%d + bias, %s%s", s.Hidden, 3*s.Hidden, dt, out), thr, 2 * rows * H * 3 * H, 0
	case KernelAttention:
		return "attention", fmt.Sprintf("cpu_attention_fast, default kernel (bf16: AMX, else AVX512-BF16 where the ISA has them; else AVX-512 f32, else sgemm): %d heads of %d, QK^T, softmax, PV", s.Heads, s.Hidden/s.Heads), thr,
			4 * float64(B) * float64(L) * float64(L) * H, 0
	case KernelSoftmax:
		return "softmax", "cpu_softmax_row_fast (AVX-512 where present) over every score row (B x heads x L rows of L)", thr, 0,
			2 * 4 * float64(B) * nh * float64(L) * float64(L)
	case KernelSoftmaxC:
		return "softmax_c", "cpu_softmax_row_c (the old generic C softmax) over the same rows", thr, 0,
			2 * 4 * float64(B) * nh * float64(L) * float64(L)
	case KernelAttentionSGEMM:
		return "attention_sgemm", "GOMPS_CPU_ATTENTION=sgemm (the old default): dnnl_sgemm per (row, head) + C softmax, f32", thr,
			4 * float64(B) * float64(L) * float64(L) * H, 0
	case KernelAttnOut:
		return "attn_out", fmt.Sprintf("oneDNN matmul %d->%d + bias + residual, %s", s.Hidden, s.Hidden, dt), thr, 2 * rows * H * H, 0
	case KernelLayerNorm:
		if bf16 {
			return "layernorm", "cpu_layernorm_fast over B*L rows, 16-row blocks over the threads, each rounded to bf16 too (as layer_tail_fast)", thr, 0, rows * H * (4 + 4 + 2)
		}
		return "layernorm", "cpu_layernorm_fast over B*L rows, 16-row blocks over the threads (as layer_tail_fast)", thr, 0, 2 * rows * H * 4
	case KernelFFNUp:
		return "ffn_up", fmt.Sprintf("oneDNN matmul %d->%d + bias + gelu_erf post-op, %s", s.Hidden, s.Intermediate, dt), thr, 2 * rows * H * I, 0
	case KernelGELU:
		return "gelu", "oneDNN eltwise gelu_erf over [B*L, I] f32 (the post-op fused in ffn_up, run alone)", thr, 0, 2 * rows * I * 4
	case KernelFFNDown:
		return "ffn_down", fmt.Sprintf("oneDNN matmul %d->%d + bias + residual, %s", s.Intermediate, s.Hidden, dt), thr, 2 * rows * I * H, 0
	case KernelPooler:
		return "pooler", fmt.Sprintf("dnnl_sgemm %d CLS rows x %dx%d + tanh + classifier, f32", B, s.Hidden, s.Hidden), thr,
			2*float64(B)*H*H + 2*float64(B)*H, 0
	case KernelAttentionAVX512:
		return "attention_avx512", "GOMPS_CPU_ATTENTION=avx512: our AVX-512 kernel + AVX-512 softmax, f32", thr,
			4 * float64(B) * float64(L) * float64(L) * H, 0
	case KernelAttentionAMX:
		return "attention_amx", "GOMPS_CPU_ATTENTION=amx: our AMX kernel, bf16 Q K V P, f32 scores, softmax and sums", thr,
			4 * float64(B) * float64(L) * float64(L) * H, 0
	case KernelAttentionBF16DP:
		return "attention_avx512bf16", "GOMPS_CPU_ATTENTION=avx512bf16: our vdpbf16ps kernel, bf16 Q K V P, f32 scores, softmax and sums", thr,
			4 * float64(B) * float64(L) * float64(L) * H, 0
	case KernelConvert:
		return "f32_to_bf16", "cpu_f32_to_bf16 of [B*L, H], 16-row blocks over the threads (in a forward: the embeddings' output, once)", thr, 0, rows * H * 6
	}
	return "", "", 0, 0, 0
}

// kernelOrder is the report order; kernels kb_available refuses (the bf16
// ones in f32, the AVX-512 attention without AVX-512) are left out.
var kernelOrder = []int{KernelEmbeddings, KernelQKV, KernelAttention, KernelSoftmax, KernelAttnOut, KernelLayerNorm,
	KernelFFNUp, KernelGELU, KernelFFNDown, KernelPooler, KernelConvert, KernelAttentionSGEMM, KernelSoftmaxC,
	KernelAttentionAVX512, KernelAttentionAMX, KernelAttentionBF16DP}

// RunKernelBench measures every kernel of the fast path at each sequence
// length, and the machine's peaks, on the calling goroutine's OS thread
// (locked for the run). Cost: allocates one synthetic layer and batch per
// sequence length (about 50 MB at MiniLM shapes, B 32, L 256, mostly the
// embedding table); runs roughly (kernels + 1) x MinTime per length.
func RunKernelBench(cfg KernelBenchConfig) (*KernelBench, error) {
	if cfg.Threads <= 0 {
		return nil, fmt.Errorf("kbench: threads %d: want at least 1", cfg.Threads)
	}
	if cfg.MinTime <= 0 {
		cfg.MinTime = 200 * time.Millisecond
	}
	if cfg.MinReps <= 0 {
		cfg.MinReps = 5
	}
	if cfg.Batch < 1 || len(cfg.Seqs) == 0 {
		return nil, errors.New("kbench: need a batch of at least 1 and a sequence length")
	}
	s := cfg.Shape
	if s.Hidden < 1 || s.Heads < 1 || s.Hidden%s.Heads != 0 || s.Intermediate < 1 || s.Vocab < 1 {
		return nil, fmt.Errorf("kbench: shape %+v: want hidden divisible by heads and positive sizes", s)
	}
	if cfg.Precision != PrecisionF32 && cfg.Precision != PrecisionBF16 {
		return nil, fmt.Errorf("kbench: precision %d: want f32 or bf16", cfg.Precision)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := &KernelBench{Config: cfg}
	bf16 := cfg.Precision == PrecisionBF16

	// Peaks: FMA loop (best of 3 runs of about MinTime/3) and a 64 MiB copy (best of 8).
	var flops C.double
	var isa [32]C.char
	iters := int64(1 << 16)
	for { // calibrate to about MinTime / 3 per run, then keep the best of 3
		sec := float64(C.kb_peak_fma(C.int32_t(cfg.Threads), C.int64_t(iters), &flops, &isa[0], C.size_t(len(isa))))
		if sec >= cfg.MinTime.Seconds()/3 || iters >= 1<<34 {
			break
		}
		iters *= 2
	}
	for range 3 {
		sec := float64(C.kb_peak_fma(C.int32_t(cfg.Threads), C.int64_t(iters), &flops, &isa[0], C.size_t(len(isa))))
		out.Peaks.FMA = max(out.Peaks.FMA, float64(flops)/sec/1e9)
	}
	out.Peaks.FMAISA = C.GoString(&isa[0])
	copyBytes := int64(64 << 20)
	if sec := float64(C.kb_peak_copy(C.int32_t(cfg.Threads), C.int64_t(copyBytes), 8)); sec > 0 {
		out.Peaks.Copy = 2 * float64(copyBytes) / sec / 1e9
	}

	for _, L := range cfg.Seqs {
		if L < 1 {
			return nil, fmt.Errorf("kbench: sequence length %d", L)
		}
		var st *C.kb_state
		var errBuf [512]C.char
		if rc := C.kb_init(C.int32_t(s.Hidden), C.int32_t(s.Heads), C.int32_t(s.Intermediate), C.int32_t(cfg.Batch),
			C.int32_t(L), C.int32_t(s.Vocab), C.int32_t(cfg.Precision), C.int32_t(cfg.Threads), C.uint64_t(cfg.Seed+uint64(L)),
			&st, &errBuf[0], C.size_t(len(errBuf))); rc != 0 {
			return nil, &Error{Code: int(rc), Msg: C.GoString(&errBuf[0])}
		}
		err := func() error {
			defer C.kb_free(st)
			if out.Peaks.Matmul == 0 {
				best, _, _, err := timeKernel(st, KernelPeakMatmul, cfg)
				if err != nil {
					return err
				}
				rows, n := float64(C.kb_peak_rows(st)), float64(C.kb_peak_n(st))
				out.Peaks.Matmul = 2 * rows * n * n / best.Seconds() / 1e9
				out.Peaks.MatmulWhy = fmt.Sprintf("oneDNN matmul %.0fx%.0f by %.0fx%.0f", rows, n, n, n)
			}
			for _, k := range kernelOrder {
				if C.kb_available(st, C.int32_t(k)) == 0 {
					continue
				}
				best, med, reps, err := timeKernel(st, k, cfg)
				if err != nil {
					return err
				}
				r := KernelResult{Kernel: k, Seq: L, Rows: cfg.Batch * L, Best: best, Median: med, Reps: reps}
				r.Name, r.What, r.Threads, r.FLOPs, r.Bytes = kernelInfo(k, s, cfg.Batch, L, cfg.Threads, bf16)
				if k == KernelPooler {
					r.Rows = cfg.Batch
				}
				switch {
				case r.FLOPs > 0:
					r.Unit = "GFLOP/s"
					r.Rate = r.FLOPs / best.Seconds() / 1e9
					linear := k == KernelQKV || k == KernelAttnOut || k == KernelFFNUp || k == KernelFFNDown || k == KernelAttentionAMX || k == KernelAttentionBF16DP
					if bf16 && linear {
						r.PeakName, r.PeakFrac = "oneDNN bf16 matmul", r.Rate/out.Peaks.Matmul
					} else {
						r.PeakName, r.PeakFrac = "FMA loop", r.Rate/out.Peaks.FMA
					}
				default:
					r.Unit = "GB/s"
					r.Rate = r.Bytes / best.Seconds() / 1e9
					r.PeakName, r.PeakFrac = "memcpy", r.Rate/out.Peaks.Copy
				}
				out.Results = append(out.Results, r)
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// timeKernel runs k twice untimed, then times calls until cfg.MinTime has
// passed and cfg.MinReps are done; returns the best and median.
func timeKernel(st *C.kb_state, k int, cfg KernelBenchConfig) (best, median time.Duration, reps int, err error) {
	var errBuf [512]C.char
	run := func() error {
		if rc := C.kb_run(st, C.int32_t(k), &errBuf[0], C.size_t(len(errBuf))); rc != 0 {
			return &Error{Code: int(rc), Msg: C.GoString(&errBuf[0])}
		}
		return nil
	}
	for range 2 {
		if err := run(); err != nil {
			return 0, 0, 0, err
		}
	}
	var times []time.Duration
	start := time.Now()
	for len(times) < cfg.MinReps || time.Since(start) < cfg.MinTime {
		t0 := time.Now()
		if err := run(); err != nil {
			return 0, 0, 0, err
		}
		times = append(times, time.Since(t0))
		if len(times) >= 100000 {
			break
		}
	}
	slices.Sort(times)
	return times[0], times[len(times)/2], len(times), nil
}

// ForwardEstimate sums the kernels of one forward pass at sequence length L
// (embeddings, layers x {qkv, attention, attn_out, 2 layernorms, ffn_up,
// ffn_down, and in bf16 3 input conversions}, pooler) from their best times: an
// estimate of pairs/s from the parts, not a measurement of the forward pass.
func (kb *KernelBench) ForwardEstimate(L, layers int) (time.Duration, float64) {
	get := func(k int) time.Duration {
		for _, r := range kb.Results {
			if r.Kernel == k && r.Seq == L {
				return r.Best
			}
		}
		return 0
	}
	layer := get(KernelQKV) + get(KernelAttention) + get(KernelAttnOut) + 2*get(KernelLayerNorm) +
		get(KernelFFNUp) + get(KernelFFNDown) + 3*get(KernelConvert)
	total := get(KernelEmbeddings) + time.Duration(layers)*layer + get(KernelPooler)
	if total <= 0 {
		return 0, math.NaN()
	}
	return total, float64(kb.Config.Batch) / total.Seconds()
}
