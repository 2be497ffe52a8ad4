package cpu_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/weights"
)

func TestForwardMatchesReference(t *testing.T) {
	for _, f16 := range []bool{false, true} {
		for _, plain := range []bool{false, true} {
			name := fmt.Sprintf("dtype=%s/path=%s", map[bool]string{false: "f32", true: "f16"}[f16],
				map[bool]string{false: "onednn", true: "plain"}[plain])
			t.Run(name, func(t *testing.T) {
				tm := cputest.RandomModel(tinyConfig(f16), 42)
				path := tm.Write(t, t.TempDir())
				_, c := openTest(t, path, plain, 8, 64)
				b := makeBatch(tm, []int{1, 2, 17, 33, 64, 40, 5}, 64, 7, 0)
				got := forward(t, c, b)
				assert.Greater(t, stddev(got), 0.5, "logits must spread for the bound to mean something")
				maxDelta := 0.0
				for r := 0; r < b.batch; r++ {
					ids, types := b.row(r)
					want := cputest.Forward64(tm, ids, types)
					assert.InDelta(t, want, float64(got[r]), 1e-4, "row %d (length %d)", r, b.length[r])
					maxDelta = math.Max(maxDelta, math.Abs(want-float64(got[r])))
				}
				t.Logf("max |logit - float64 reference| = %.3g over %d rows (logit std %.3g)", maxDelta, b.batch, stddev(got))
			})
		}
	}
}

func TestForwardIgnoresPadding(t *testing.T) {
	tm := cputest.RandomModel(tinyConfig(false), 43)
	path := tm.Write(t, t.TempDir())
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			_, c := openTest(t, path, plain, 4, 64)
			lengths := []int{9, 30, 1, 17}
			base := forward(t, c, makeBatch(tm, lengths, 30, 3, 0))
			// the same rows with garbage in the padding, out-of-range ids included
			junk := makeBatch(tm, lengths, 30, 3, 0)
			for r, n := range lengths {
				for s := n; s < 30; s++ {
					junk.ids[r*30+s] = int32(-7 + 1000003*s)
					junk.types[r*30+s] = int32(s)
				}
			}
			assert.Equal(t, base, forward(t, c, junk), "padding content changed the logits")
			// the same rows padded further
			wide := forward(t, c, makeBatch(tm, lengths, 64, 3, 5))
			assert.InDeltaSlice(t, base, wide, 1e-6, "padding length changed the logits")
			// each row alone, unpadded
			for r, n := range lengths {
				one := makeBatch(tm, []int{n}, n, 3, 0)
				ids, types := makeBatch(tm, lengths, 30, 3, 0).row(r)
				copy(one.ids, ids)
				copy(one.types, types)
				assert.InDelta(t, base[r], forward(t, c, one)[0], 1e-5, "row %d alone", r)
			}
		})
	}
}

func TestContextsShareModel(t *testing.T) {
	tm := cputest.RandomModel(tinyConfig(false), 44)
	path := tm.Write(t, t.TempDir())
	m, c1 := openTest(t, path, false, 8, 64)
	b := makeBatch(tm, []int{3, 64, 20, 11, 64, 2, 40, 33}, 64, 9, 0)
	want := forward(t, c1, b)
	assert.Equal(t, native.CodeInvalidArg, statusOf(c1.SetThreads(5000)), "absurd thread count")
	require.NoError(t, c1.SetThreads(1))
	// oneDNN splits a matmul's work by thread count, so the f32 sums change
	// order (under ONEDNN_MAX_CPU_ISA=AVX2 the logits move by up to 2e-6);
	// 1e-5 is the bound for any change of batch shape (row alone, above)
	want1 := forward(t, c1, b)
	assert.InDeltaSlice(t, want, want1, 1e-5, "1 thread vs 2")
	var wg sync.WaitGroup
	results := make([][]float32, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := m.NewContext(1 + i%2)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			out := make([]float32, b.batch)
			for k := 0; k < 3 && err == nil; k++ {
				err = c.Forward(b.batch, b.seq, b.ids, b.types, b.length, out)
			}
			results[i], errs[i] = out, err
		}()
	}
	wg.Wait()
	// contexts sharing the model give what one context of the same thread
	// count gives
	for i := range results {
		require.NoError(t, errs[i])
		ref := map[int][]float32{1: want1, 2: want}[1+i%2]
		assert.InDeltaSlice(t, ref, results[i], 1e-6, "context %d (%d threads)", i, 1+i%2)
	}
}

func TestModelInfo(t *testing.T) {
	tm := cputest.RandomModel(tinyConfig(false), 45)
	path := tm.Write(t, t.TempDir())
	m, err := openModel(path, native.PrecisionF32, 0, 0)
	require.NoError(t, err)
	defer m.Close()
	in := m.Info()
	assert.NotEmpty(t, in.ISA)
	assert.Equal(t, native.ModelInfo{Backend: "cpu", ISA: in.ISA, Arch: "bert", Name: "test/tiny-random", NumLabels: 1,
		Config: weights.Config{VocabSize: 100, HiddenSize: 64, NumLayers: 2, NumHeads: 4, IntermediateSize: 128,
			MaxPosition: 64, TypeVocabSize: 2, LayerNormEps: 1e-12},
		Precision: native.PrecisionF32, MaxBatch: 64, MaxSeq: 64,
		WeightsBytes: in.WeightsBytes, ContextBytes: in.ContextBytes}, in)
	// every tensor as f32 (the packed linear weights are at least their
	// plain size), and scratch for 64 x 64 tokens of hidden, QKV and
	// attention rows at least
	var all int64
	for _, tt := range tm.Tensors {
		all += int64(tt.Elems()) * 4
	}
	assert.GreaterOrEqual(t, in.WeightsBytes, all, "weights bytes")
	assert.Less(t, in.WeightsBytes, 2*all, "weights bytes")
	assert.GreaterOrEqual(t, in.ContextBytes, int64(64*64*64*5*4), "context bytes")
	assert.Equal(t, `{"version":"1.0","model":{"type":"WordPiece"}}`, string(m.Tokenizer()), "the file's tokenizer")
	assert.Equal(t, uint32(2), uint32(native.ABIVersion))
	assert.Equal(t, "cpu", m.Backend().Name())
	assert.Contains(t, m.Backend().Version(), "oneDNN 2.")
}

func TestModelInitRejectsBadFiles(t *testing.T) {
	tm := cputest.RandomModel(tinyConfig(false), 46)
	good := tm.Encode()
	le := binary.LittleEndian
	entry := func(i int) int { return 256 + 128*i }
	// offset of the first data byte of tensor i
	dataOf := func(b []byte, i int) int { return int(le.Uint64(b[entry(i)+88:])) }
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		code   native.Code
		want   []string
	}{
		{"empty", func(b []byte) []byte { return nil }, native.CodeFormat, []string{"256-byte preamble"}},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }, native.CodeFormat, []string{"file_size"}},
		{"truncated_header", func(b []byte) []byte { return b[:1000] }, native.CodeFormat, []string{"header_size"}},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, native.CodeFormat, []string{"magic"}},
		{"version", func(b []byte) []byte { le.PutUint32(b[8:], 2); cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"version"}},
		{"header_crc", func(b []byte) []byte { b[100] ^= 1; return b }, native.CodeFormat, []string{"header_crc32c"}},
		{"dtype_bf16", func(b []byte) []byte { le.PutUint32(b[32:], 2); cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"dtype", "BF16"}},
		{"hidden_range", func(b []byte) []byte { le.PutUint32(b[48:], 9000); cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"hidden_size", "9000"}},
		{"heads_divide", func(b []byte) []byte { le.PutUint32(b[56:], 3); cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"multiple of num_heads"}},
		{"eps", func(b []byte) []byte {
			le.PutUint64(b[80:], math.Float64bits(math.NaN()))
			cputest.ResealHeader(b)
			return b
		}, native.CodeFormat, []string{"layer_norm_eps"}},
		{"layers", func(b []byte) []byte { le.PutUint32(b[52:], 3); cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"n_tensors"}},
		{"tokenizer_sha", func(b []byte) []byte { b[dataOf(b, 0)-16384] ^= 1; return b }, native.CodeFormat, []string{"tokenizer_sha256"}},
		{"tensor_name", func(b []byte) []byte { b[entry(3)] = 'X'; cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"tensor 3", "embeddings.ln.gamma"}},
		{"tensor_shape", func(b []byte) []byte { le.PutUint64(b[entry(5)+72:], 7); cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"layer.0.qkv.weight", "shape"}},
		{"tensor_offset", func(b []byte) []byte {
			le.PutUint64(b[entry(6)+88:], le.Uint64(b[entry(6)+88:])+16384)
			cputest.ResealHeader(b)
			return b
		}, native.CodeFormat, []string{"layer.0.qkv.bias", "offset"}},
		{"tensor_crc", func(b []byte) []byte { b[dataOf(b, 8)+5] ^= 0x40; return b }, native.CodeFormat, []string{"layer.0.attn_out.bias", "crc32c"}},
		{"last_tensor_crc", func(b []byte) []byte { b[dataOf(b, len(tm.Tensors)-1)] ^= 1; return b }, native.CodeFormat, []string{"classifier.bias", "crc32c"}},
		{"slot_padding", func(b []byte) []byte { b[dataOf(b, 4)+64*4+3] = 1; return b }, native.CodeFormat, []string{"embeddings.ln.beta", "padding"}},
		{"reserved", func(b []byte) []byte { b[entry(2)+110] = 1; cputest.ResealHeader(b); return b }, native.CodeFormat, []string{"embeddings.token_type", "reserved"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run("file="+c.name, func(t *testing.T) {
			b := c.mutate(append([]byte(nil), good...))
			path := filepath.Join(dir, c.name+".gomps")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			m, err := openModel(path, native.PrecisionF32, 0, 0)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.Equal(t, c.code, statusOf(err), "status of %v", err)
			for _, w := range append(c.want, path) {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	t.Run("file=missing", func(t *testing.T) {
		_, err := openModel(filepath.Join(dir, "nope.gomps"), native.PrecisionF32, 0, 0)
		assert.Equal(t, native.CodeIO, statusOf(err), "%v", err)
		assert.Contains(t, err.Error(), "nope.gomps")
	})
	t.Run("file=good", func(t *testing.T) {
		path := filepath.Join(dir, "good.gomps")
		require.NoError(t, os.WriteFile(path, good, 0o644))
		m, err := openModel(path, native.PrecisionF32, 0, 0)
		require.NoError(t, err)
		m.Close()
	})
}

func TestInvalidArguments(t *testing.T) {
	tm := cputest.RandomModel(tinyConfig(false), 47)
	path := tm.Write(t, t.TempDir())
	t.Run("init", func(t *testing.T) {
		for _, c := range []struct {
			name             string
			precision        native.Precision
			maxBatch, maxSeq int
			code             native.Code
		}{
			{"precision=-1", -1, 0, 0, native.CodeInvalidArg},
			{"precision=7", 7, 0, 0, native.CodeUnsupported}, // one a later version may define
			{"precision=f16", 2, 0, 0, native.CodeUnsupported},
			{"max_batch=-1", 0, -1, 0, native.CodeInvalidArg},
			{"max_seq=-1", 0, 0, -1, native.CodeInvalidArg},
			{"max_seq>max_position", 0, 0, 65, native.CodeInvalidArg},
		} {
			_, err := openModel(path, c.precision, c.maxBatch, c.maxSeq)
			assert.Equal(t, c.code, statusOf(err), "%s: %v", c.name, err)
			assert.True(t, strings.HasPrefix(errMsg(err), "cpu: "), "%s: %v", c.name, err)
		}
	})
	_, c := openTest(t, path, false, 4, 32)
	good := makeBatch(tm, []int{3, 32}, 32, 1, 0)
	logits := make([]float32, 4)
	require.NoError(t, c.Forward(2, 32, good.ids, good.types, good.length, logits))
	mutated := func(f func(b *testBatch)) testBatch {
		b := makeBatch(tm, []int{3, 32}, 32, 1, 0)
		f(&b)
		return b
	}
	for _, tc := range []struct {
		name       string
		batch, seq int
		b          testBatch
		want       string
	}{
		{"batch=0", 0, 32, good, "batch 0"},
		{"batch>max", 5, 32, good, "batch 5"},
		{"seq=0", 2, 0, good, "seq 0"},
		{"seq>max", 2, 33, good, "seq 33"},
		{"length=0", 2, 32, mutated(func(b *testBatch) { b.length[0] = 0 }), "lengths[0] = 0"},
		{"length>seq", 2, 32, mutated(func(b *testBatch) { b.length[1] = 33 }), "lengths[1] = 33"},
		{"id<0", 2, 32, mutated(func(b *testBatch) { b.ids[1] = -1 }), "ids[0][1] = -1"},
		{"id>=vocab", 2, 32, mutated(func(b *testBatch) { b.ids[32+31] = 100 }), "ids[1][31] = 100"},
		{"type>=2", 2, 32, mutated(func(b *testBatch) { b.types[2] = 2 }), "type_ids[0][2] = 2"},
		{"nil_ids", 2, 32, mutated(func(b *testBatch) { b.ids = nil }), "NULL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Forward(tc.batch, tc.seq, tc.b.ids, tc.b.types, tc.b.length, logits)
			assert.Equal(t, native.CodeInvalidArg, statusOf(err), "%v", err)
			assert.Contains(t, errMsg(err), tc.want)
		})
	}
	// a failed call leaves the context usable
	require.NoError(t, c.Forward(2, 32, good.ids, good.types, good.length, logits))
}
