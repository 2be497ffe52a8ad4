//go:build darwin && cgo

package metal_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kmetal "github.com/gomps/gomps/kernels/metal"
	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/metal"
	"github.com/gomps/gomps/weights"
)

// The backend's tests run through the one binding of the ABI
// (kernels/native), as every caller does; ModelStats, CompareOp and
// GPUUsage are this package's own entry points beside the ABI.

// Only a missing Metal device may be skipped, also under CI=true (hosted
// Apple-silicon runners have no device that Metal Performance Shaders
// supports): the backend reports it as GOMPS_ERR_DEVICE with this text.
func skipIfNoDevice(t *testing.T, err error) {
	t.Helper()
	var ne *native.Error
	if (errors.As(err, &ne) && ne.Code == native.CodeDevice && strings.Contains(ne.Msg, "no usable Metal device")) ||
		errors.Is(err, metal.ErrNoDevice) {
		t.Skipf("no usable Metal device: %v", err)
	}
}

// loadModel loads path on the Metal backend (0 = the backend's defaults).
func loadModel(path string, prec native.Precision, maxBatch, maxSeq int, buckets string) (*native.Model, error) {
	b, err := native.Lookup("metal")
	if err != nil {
		return nil, err
	}
	return b.Load(path, native.Options{Precision: prec, MaxBatch: maxBatch, MaxSeq: maxSeq, Buckets: buckets})
}

// forward runs one batch on c and returns its logits (one label per row).
func forward(c *native.Context, batch, seq int, ids, types, lengths []int32) ([]float32, error) {
	out := make([]float32, batch)
	return out, c.Forward(batch, seq, ids, types, lengths, out)
}

// openTiny loads path with the tiny buckets and opens one context; both are
// closed when the test ends. It skips when there is no usable Metal device.
func openTiny(t *testing.T, path string, prec native.Precision, maxBatch int) (*native.Model, *native.Context) {
	t.Helper()
	m, err := loadModel(path, prec, maxBatch, 0, tinyBuckets)
	skipIfNoDevice(t, err)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	ctx, err := m.NewContext(0)
	require.NoError(t, err)
	t.Cleanup(ctx.Close)
	return m, ctx
}

const (
	precF32 = native.PrecisionF32
	precF16 = native.PrecisionF16
	// buckets small enough to compile fast: seq 8, 16 and the tiny model's 40
	tinyBuckets = "1x8,4x16,2x40"
)

// TestCapabilities: the Metal backend's answers: padded (static-shape
// buckets), one instance given the whole thread budget, f32 and f16 where a
// device is usable, and the device's allocated memory.
func TestCapabilities(t *testing.T) {
	b, err := native.Lookup("metal")
	require.NoError(t, err)
	c, err := b.Capabilities(8)
	require.NoError(t, err)
	assert.True(t, c.Padded)
	assert.Equal(t, 1, c.Instances)
	assert.Equal(t, 8, c.Threads)
	if c.Unusable != "" {
		assert.Contains(t, c.Unusable, "no usable Metal device")
		assert.Empty(t, c.Precisions)
		t.Skipf("%s", c.Unusable)
	}
	assert.Equal(t, []native.Precision{native.PrecisionF32, native.PrecisionF16}, c.Precisions)
	assert.NotEmpty(t, c.ISA)
	assert.GreaterOrEqual(t, c.MemoryInUse, int64(0))
}

func TestKernelNameMatchesLibrary(t *testing.T) {
	for _, name := range kmetal.Kernels() {
		i := strings.LastIndex(name, "_")
		assert.Equal(t, name, metal.KernelName(name[:i], name[i+1:] == "f16"), "kernel %s", name)
	}
}

// Errors from the file and the options come before any device is touched, so
// these run on every Mac, GPU or not.
func TestModelInitErrors(t *testing.T) {
	path := tinyModel(t, weights.F32)
	cases := []struct {
		name                 string
		path                 string
		prec                 native.Precision
		batch, seq           int
		buckets, env, needle string
		status               native.Code
	}{
		{name: "missing-file", path: path + ".absent", status: -3, needle: "open"},
		{name: "bf16", path: path, prec: 1, status: -5, needle: "precision 1"},
		{name: "bad-buckets", path: path, buckets: "8x", status: -1, needle: "buckets"},
		{name: "bucket-too-long", path: path, seq: 16, buckets: "1x32", status: -1, needle: "outside"},
		{name: "buckets-short", path: path, buckets: "1x8", status: -1, needle: "below max_seq 40"},
		{name: "max-seq", path: path, seq: 41, status: -1, needle: "max_seq 41"},
		{name: "kernels-env", path: path, env: "layer_norm,gelu", status: -1, needle: "unknown kernel \"gelu\""},
	}
	for _, c := range cases {
		t.Run("case="+c.name, func(t *testing.T) {
			t.Setenv("GOMPS_METAL_KERNELS", c.env)
			m, err := loadModel(c.path, c.prec, c.batch, c.seq, c.buckets)
			require.Error(t, err)
			if m != nil {
				m.Close()
			}
			var ne *native.Error
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, c.status, ne.Code, "status")
			assert.Contains(t, ne.Msg, c.needle, "message")
		})
	}
}

// tolerance of a Metal logit against the float64 reference: fp32 1e-4 (the
// CPU backend meets 1e-5 on this model, reference_cpu_test.go; the GPU's
// reduction order and erf differ); fp16 (10-bit mantissa, about 5e-4
// relative per rounding, 2 layers, fp32 softmax and LayerNorm statistics):
// 3e-2 + 3e-2 |ref|, to be tightened once a Mac has measured it.
func tolerance(prec native.Precision, ref float64) float64 {
	if prec == precF16 {
		return 3e-2 + 3e-2*math.Abs(ref)
	}
	return 1e-4
}

func TestForwardMatchesReference(t *testing.T) {
	for _, prec := range []native.Precision{precF32, precF16} {
		for _, kernels := range []string{"none", "embed"} {
			t.Run("prec="+prec.String()+"/kernels="+kernels, func(t *testing.T) {
				t.Setenv("GOMPS_METAL_KERNELS", kernels)
				dt := weights.F32
				if prec == precF16 {
					dt = weights.F16
				}
				path := tinyModel(t, dt)
				ref, err := loadRef(path)
				require.NoError(t, err)
				_, ctx := openTiny(t, path, prec, 8)
				r := rand.New(rand.NewPCG(3, uint64(prec)))
				// (5, 16) needs two chunks; (8, 40) four chunks of the 2x40 bucket
				for _, shape := range [][2]int{{1, 1}, {3, 7}, {5, 16}, {8, 40}} {
					in := randomBatch(r, shape[0], shape[1], ref.cfg.VocabSize)
					got, err := forward(ctx, in.batch, in.seq, in.ids, in.types, in.lengths)
					require.NoError(t, err)
					want := ref.logits(in)
					for b := range in.batch {
						assert.InDelta(t, want[b], float64(got[b]), tolerance(prec, want[b]),
							"batch=%d seq=%d row %d (len %d)", in.batch, in.seq, b, in.lengths[b])
					}
				}
			})
		}
	}
}

// kernelSelections are the GOMPS_METAL_KERNELS values the forward tests run:
// each layer kernel alone, pairs, and everything (spelled out and as "all").
var kernelSelections = []struct {
	env             string
	kernels         []string
	ln, sm, ge, emb int // 1 if selected
}{
	{env: "layer_norm", kernels: []string{"layer_norm"}, ln: 1},
	{env: "softmax", kernels: []string{"softmax"}, sm: 1},
	{env: "bias_gelu", kernels: []string{"bias_gelu"}, ge: 1},
	{env: "softmax,bias_gelu", kernels: []string{"softmax", "bias_gelu"}, sm: 1, ge: 1},
	{env: "embed,layer_norm,softmax,bias_gelu", kernels: []string{"embed", "layer_norm", "softmax", "bias_gelu"},
		ln: 1, sm: 1, ge: 1, emb: 1},
	{env: "all", kernels: []string{"embed", "layer_norm", "softmax", "bias_gelu"}, ln: 1, sm: 1, ge: 1, emb: 1},
}

// Each kernel selection, in fp32 and fp16, against the pure MPSGraph path
// (same device, same precision, same inputs) and against the float64
// reference. The selection's logits may differ from the graph's only by
// the kernels' own rounding: fp32 within 2e-5 (each kernel is within NMSE
// 1e-7 of its graph op, TestCompareOps; 2 layers of it move a logit by
// about 1e-6, so 2e-5 leaves margin), fp16 within the fp16 reference
// tolerance. Runs only on a Mac with a GPU (the macos workflow's hosted
// runner has none, so there it skips); nothing here has run yet.
func TestForwardKernelSelections(t *testing.T) {
	for _, prec := range []native.Precision{precF32, precF16} {
		dt := weights.F32
		if prec == precF16 {
			dt = weights.F16
		}
		path := tinyModel(t, dt)
		ref, err := loadRef(path)
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(13, uint64(prec)))
		var inputs []batchInput
		for _, shape := range [][2]int{{1, 1}, {3, 7}, {5, 16}, {8, 40}} {
			inputs = append(inputs, randomBatch(r, shape[0], shape[1], ref.cfg.VocabSize))
		}
		run := func(t *testing.T, env string) ([][]float32, metal.Stats) {
			t.Setenv("GOMPS_METAL_KERNELS", env)
			m, err := loadModel(path, prec, 8, 0, tinyBuckets)
			skipIfNoDevice(t, err)
			require.NoError(t, err)
			defer m.Close()
			st, err := metal.ModelStats(m.Handle())
			require.NoError(t, err)
			ctx, err := m.NewContext(0)
			require.NoError(t, err)
			defer ctx.Close()
			var out [][]float32
			for _, in := range inputs {
				got, err := forward(ctx, in.batch, in.seq, in.ids, in.types, in.lengths)
				require.NoError(t, err)
				out = append(out, got)
			}
			return out, st
		}
		pname := prec.String()
		var graph [][]float32
		t.Run("prec="+pname+"/kernels=none", func(t *testing.T) {
			graph, _ = run(t, "none")
		})
		if graph == nil {
			continue // skipped: no device
		}
		for _, sel := range kernelSelections {
			t.Run("prec="+pname+"/kernels="+sel.env, func(t *testing.T) {
				got, st := run(t, sel.env)
				layers := ref.cfg.NumLayers
				perLayer := sel.sm + 2*sel.ln + sel.ge
				assert.Equal(t, sel.kernels, st.Kernels, "selected kernels")
				assert.Equal(t, 1+layers*perLayer, st.Segments, "graph segments per forward")
				assert.Equal(t, sel.emb+layers*perLayer, st.KernelSteps, "kernel dispatches per forward")
				for i, in := range inputs {
					want := ref.logits(in)
					for b := range in.batch {
						vsGraph := 2e-5
						if prec == precF16 {
							vsGraph = tolerance(prec, float64(graph[i][b]))
						}
						assert.InDelta(t, float64(graph[i][b]), float64(got[i][b]), vsGraph,
							"vs graph: batch=%d seq=%d row %d (len %d)", in.batch, in.seq, b, in.lengths[b])
						assert.InDelta(t, want[b], float64(got[i][b]), tolerance(prec, want[b]),
							"vs reference: batch=%d seq=%d row %d (len %d)", in.batch, in.seq, b, in.lengths[b])
					}
				}
			})
		}
	}
}

func TestForwardArgErrors(t *testing.T) {
	_, ctx := openTiny(t, tinyModel(t, weights.F32), precF32, 4)
	ok := randomBatch(rand.New(rand.NewPCG(5, 5)), 2, 8, 64)
	bad := func(mut func(in *batchInput)) batchInput {
		in := batchInput{batch: ok.batch, seq: ok.seq, ids: append([]int32(nil), ok.ids...),
			types: append([]int32(nil), ok.types...), lengths: append([]int32(nil), ok.lengths...)}
		mut(&in)
		return in
	}
	cases := map[string]struct {
		in     batchInput
		needle string
	}{
		"batch-over-max": {bad(func(in *batchInput) { in.batch = 5 }), "batch 5"},
		"seq-over-max":   {bad(func(in *batchInput) { in.seq = 41 }), "seq 41"},
		"length-zero":    {bad(func(in *batchInput) { in.lengths[1] = 0 }), "length 0"},
		"id-range":       {bad(func(in *batchInput) { in.ids[0] = 64 }), "id 64"},
		"type-range":     {bad(func(in *batchInput) { in.types[0] = 2 }), "type id 2"},
	}
	for name, c := range cases {
		t.Run("case="+name, func(t *testing.T) {
			ids := make([]int32, max(len(c.in.ids), c.in.batch*c.in.seq))
			copy(ids, c.in.ids)
			types := make([]int32, len(ids))
			copy(types, c.in.types)
			lengths := make([]int32, max(len(c.in.lengths), c.in.batch))
			copy(lengths, c.in.lengths)
			_, err := forward(ctx, c.in.batch, c.in.seq, ids, types, lengths)
			var ne *native.Error
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, native.CodeInvalidArg, ne.Code)
			assert.Contains(t, ne.Msg, c.needle)
		})
	}
	// the context still works after errors
	_, err := forward(ctx, ok.batch, ok.seq, ok.ids, ok.types, ok.lengths)
	assert.NoError(t, err)
}

// Padding content and the padded length must not change a row's logit, on
// the pure MPSGraph path and with every kernel (the softmax kernel masks keys
// by the lengths buffer, the graph by the additive mask).
func TestForwardPaddingInvariance(t *testing.T) {
	for _, env := range []string{"none", "all"} {
		t.Run("kernels="+env, func(t *testing.T) {
			t.Setenv("GOMPS_METAL_KERNELS", env)
			_, ctx := openTiny(t, tinyModel(t, weights.F32), precF32, 8)
			short := randomBatch(rand.New(rand.NewPCG(7, 7)), 3, 8, 64)
			long := batchInput{batch: 3, seq: 40, ids: make([]int32, 3*40), types: make([]int32, 3*40), lengths: short.lengths}
			for b := range 3 {
				copy(long.ids[b*40:], short.ids[b*8:b*8+8])
				copy(long.types[b*40:], short.types[b*8:b*8+8])
				for j := int(short.lengths[b]); j < 40; j++ {
					long.ids[b*40+j] = 63
					long.types[b*40+j] = 1
				}
			}
			a, err := forward(ctx, short.batch, short.seq, short.ids, short.types, short.lengths)
			require.NoError(t, err)
			b, err := forward(ctx, long.batch, long.seq, long.ids, long.types, long.lengths)
			require.NoError(t, err)
			assert.InDeltaSlice(t, a, b, 1e-5)
		})
	}
}

// Contexts of one model run concurrently (the ABI's promise).
func TestConcurrentContexts(t *testing.T) {
	m, err := loadModel(tinyModel(t, weights.F32), precF32, 8, 0, tinyBuckets)
	skipIfNoDevice(t, err)
	require.NoError(t, err)
	defer m.Close()
	in := randomBatch(rand.New(rand.NewPCG(9, 9)), 4, 16, 64)
	ctx0, err := m.NewContext(0)
	require.NoError(t, err)
	want, err := forward(ctx0, in.batch, in.seq, in.ids, in.types, in.lengths)
	ctx0.Close()
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, err := m.NewContext(0)
			if err != nil {
				errs <- err
				return
			}
			defer ctx.Close()
			for range 25 {
				got, err := forward(ctx, in.batch, in.seq, in.ids, in.types, in.lengths)
				if err != nil {
					errs <- err
					return
				}
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-6 {
						errs <- errors.New("metal: concurrent forward differs from the sequential one")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func TestModelStats(t *testing.T) {
	m, err := loadModel(tinyModel(t, weights.F32), precF32, 0, 0, "")
	skipIfNoDevice(t, err)
	require.NoError(t, err)
	defer m.Close()
	s, err := metal.ModelStats(m.Handle())
	require.NoError(t, err)
	in := m.Info()
	assert.Equal(t, "metal", in.Backend)
	assert.Equal(t, "bert", in.Arch)
	assert.Equal(t, 1, in.NumLabels)
	assert.NotEmpty(t, m.Tokenizer(), "the file's tokenizer, verified by the backend")
	assert.Greater(t, in.WeightsBytes, int64(0))
	assert.Greater(t, in.ContextBytes, int64(0))
	// the default set clamped to max_seq 40 and max_batch 64: batches 1, 4, 8, 16, 32 at seq 40
	var got [][2]int
	for _, b := range s.Buckets {
		got = append(got, [2]int{b.Batch, b.Seq})
		assert.Greater(t, b.MS, 0.0, "bucket %dx%d compile time", b.Batch, b.Seq)
	}
	assert.Equal(t, [][2]int{{1, 40}, {4, 40}, {8, 40}, {16, 40}, {32, 40}}, got)
	assert.Greater(t, s.LoadMS, s.CompileMS-1e-9, "load includes compile")
	assert.True(t, s.WeightsZeroCopy, "f32 file, f32 model: weights should wrap the mapping")
	assert.True(t, s.LockedEncode)
	assert.False(t, s.EmbedKernel)
	assert.Empty(t, s.Kernels, "pure MPSGraph by default")
	assert.Equal(t, 1, s.Segments, "the default forward is one executable")
	assert.Equal(t, 0, s.KernelSteps)
	t.Logf("load %.1f ms, compile+warm-up %.1f ms", s.LoadMS, s.CompileMS)
}

// Each kernel against the same op as an MPSGraph, on the device.
func TestCompareOps(t *testing.T) {
	shapes := map[string][2]int{"layer_norm": {37, 384}, "masked_softmax": {96, 129}, "bias_gelu": {7, 1536}, "embed": {37, 384}}
	for op, sh := range shapes {
		for _, f16 := range []bool{false, true} {
			t.Run("op="+op+"/f16="+map[bool]string{false: "no", true: "yes"}[f16], func(t *testing.T) {
				r, err := metal.CompareOp(op, f16, sh[0], sh[1], 3)
				skipIfNoDevice(t, err)
				require.NoError(t, err)
				// f32: the project's kernel bound. f16: both outputs are rounded
				// to half independently (expected nmse about 8e-8 from one
				// rounding, so up to about 3e-7 from two), bound 1e-6.
				bound := 1e-7
				if f16 {
					bound = 1e-6
				}
				assert.LessOrEqual(t, r.NMSE, bound, "nmse kernel vs graph (max |diff| %g)", r.MaxAbsDiff)
				t.Logf("%s f16=%v: kernel %.3f ms, graph %.3f ms, nmse %.2e", op, f16, r.KernelMS, r.GraphMS, r.NMSE)
			})
		}
	}
	_, err := metal.CompareOp("softmax", false, 1, 1, 1)
	if !errors.Is(err, metal.ErrNoDevice) {
		assert.ErrorContains(t, err, "unknown op")
	}
}
