package weights_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

var update = flag.Bool("update", false, "rewrite the converter golden files in testdata/golden")

// hfSources maps a native tensor name to its Hugging Face sources (without
// the bert. prefix), per the table of FORMAT.md.
func hfSources(name string, gammaBeta bool) []string {
	w, b := "weight", "bias"
	if gammaBeta {
		w, b = "gamma", "beta"
	}
	fixed := map[string][]string{
		"embeddings.word":       {"embeddings.word_embeddings.weight"},
		"embeddings.position":   {"embeddings.position_embeddings.weight"},
		"embeddings.token_type": {"embeddings.token_type_embeddings.weight"},
		"embeddings.ln.gamma":   {"embeddings.LayerNorm." + w},
		"embeddings.ln.beta":    {"embeddings.LayerNorm." + b},
		"pooler.weight":         {"pooler.dense.weight"},
		"pooler.bias":           {"pooler.dense.bias"},
		"classifier.weight":     {"classifier.weight"},
		"classifier.bias":       {"classifier.bias"},
	}
	if s, ok := fixed[name]; ok {
		return s
	}
	var l int
	var rest string
	if _, err := fmt.Sscanf(name, "layer.%d.", &l); err != nil {
		panic(name)
	}
	rest = name[strings.Index(name[len("layer."):], ".")+len("layer.")+1:]
	p := fmt.Sprintf("encoder.layer.%d.", l)
	switch rest {
	case "qkv.weight", "qkv.bias":
		suf := strings.TrimPrefix(rest, "qkv")
		return []string{p + "attention.self.query" + suf, p + "attention.self.key" + suf, p + "attention.self.value" + suf}
	}
	m := map[string]string{
		"attn_out.weight": "attention.output.dense.weight", "attn_out.bias": "attention.output.dense.bias",
		"attn_ln.gamma": "attention.output.LayerNorm." + w, "attn_ln.beta": "attention.output.LayerNorm." + b,
		"ffn_up.weight": "intermediate.dense.weight", "ffn_up.bias": "intermediate.dense.bias",
		"ffn_down.weight": "output.dense.weight", "ffn_down.bias": "output.dense.bias",
		"ffn_ln.gamma": "output.LayerNorm." + w, "ffn_ln.beta": "output.LayerNorm." + b,
	}
	return []string{p + m[rest]}
}

func roundTo(v []float32, dt weights.DType) []float32 {
	b, err := weights.EncodeFloat32(v, dt)
	if err != nil {
		panic(err)
	}
	return weights.DecodeFloat32(b, dt)
}

// convert loads dir and writes the native file, returning its path.
func convert(t *testing.T, dir string, no weights.NativeOptions, lo ...weights.LoadOption) string {
	t.Helper()
	m, err := weights.LoadHFDir(dir, lo...)
	require.NoError(t, err)
	defer m.Close()
	path := filepath.Join(t.TempDir(), "model.gomps")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, m.WriteNative(f, no))
	require.NoError(t, f.Close())
	return path
}

func TestNativeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		o    weightstest.Options
		out  weights.DType
		head bool
	}{
		{"src=f32/out=f32", tinyOpts(11), weights.F32, false},
		{"src=f32/out=f16", tinyOpts(12), weights.F16, false},
		{"src=f16/out=f32", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 13, DType: weights.F16}, weights.F32, false},
		{"src=bf16/out=f16", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 14, DType: weights.BF16, GammaBeta: true}, weights.F16, false},
		{"src=bertmodel+head/out=f32", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 15, Architecture: "BertModel", PositionIDs: true}, weights.F32, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, _ := synthDir(t, c.o)
			src := weightstest.Tensors(c.o)
			var lo []weights.LoadOption
			if c.head {
				hp := filepath.Join(t.TempDir(), "head.safetensors")
				hv, err := weightstest.WriteHead(hp, c.o.Config.HiddenSize, 5)
				require.NoError(t, err)
				for k, v := range hv {
					src[k] = weightstest.Tensor{Values: v}
				}
				lo = append(lo, weights.WithHead(hp))
			}
			path := convert(t, dir, weights.NativeOptions{DType: c.out, Name: "test/tiny"}, lo...)
			n, err := weights.OpenNative(path)
			require.NoError(t, err)
			defer n.Close()
			assert.Equal(t, c.o.Config, n.Config(), "config")
			assert.Equal(t, "test/tiny", n.Name(), "name")
			assert.Equal(t, c.out, n.DType(), "dtype")
			assert.Equal(t, weightstest.Tokenizer(), n.Tokenizer(), "tokenizer")
			assert.Equal(t, sha256.Sum256(weightstest.Tokenizer()), n.TokenizerSHA256(), "tokenizer sha256")
			raw, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
			require.NoError(t, err)
			assert.Equal(t, sha256.Sum256(raw), n.SourceSHA256(), "source sha256")
			specs := c.o.Config.Tensors()
			require.Len(t, n.Tensors(), len(specs))
			for k, tt := range n.Tensors() {
				assert.Equal(t, specs[k].Name, tt.Name, "order")
				assert.Zero(t, tt.Offset%weights.NativeAlignment, "alignment of %s", tt.Name)
				var want []float32
				for _, s := range hfSources(tt.Name, c.o.GammaBeta) {
					v := src[s].Values
					if !(c.head && (strings.HasPrefix(s, "pooler") || strings.HasPrefix(s, "classifier"))) {
						v = roundTo(v, c.o.DType)
					}
					want = append(want, roundTo(v, c.out)...)
				}
				got, err := n.Float32(tt.Name)
				require.NoError(t, err, tt.Name)
				require.Equal(t, want, got, "values of %s", tt.Name)
				data, dt, shape, err := n.Tensor(tt.Name)
				require.NoError(t, err)
				assert.Equal(t, c.out, dt)
				assert.Equal(t, specs[k].Shape, shape, "shape of %s", tt.Name)
				assert.Len(t, data, specs[k].Elems()*c.out.Size(), "bytes of %s", tt.Name)
			}
			require.NoError(t, n.Close())
			require.NoError(t, n.Close(), "idempotent")
			_, err = n.Float32("pooler.bias")
			assert.ErrorIs(t, err, weights.ErrClosed, "use after close")
			assert.Equal(t, weightstest.Tokenizer(), n.Tokenizer(), "tokenizer survives Close")
		})
	}
}

// TestConvertGolden pins the converter's bytes: regenerate with
// `go test ./weights -run TestConvertGolden -update`.
func TestConvertGolden(t *testing.T) {
	t.Parallel()
	for _, dt := range []weights.DType{weights.F32, weights.F16} {
		t.Run("dtype="+dt.String(), func(t *testing.T) {
			t.Parallel()
			dir, _ := synthDir(t, weightstest.Options{Config: weightstest.TinyConfig(), Seed: 42, PositionIDs: true})
			a := convert(t, dir, weights.NativeOptions{DType: dt, Name: "gomps/synthetic-tiny"})
			b := convert(t, dir, weights.NativeOptions{DType: dt, Name: "gomps/synthetic-tiny"})
			ab, err := os.ReadFile(a)
			require.NoError(t, err)
			bb, err := os.ReadFile(b)
			require.NoError(t, err)
			require.True(t, bytes.Equal(ab, bb), "two conversions give the same bytes")
			checkGolden(t, "synthetic-tiny-"+strings.ToLower(dt.String())+".sha256", ab)
		})
	}
}

// TestConvertGoldenTinyModel converts the committed tiny real-vocab model.
func TestConvertGoldenTinyModel(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "gomps", "testdata", "tiny")
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Skip("gomps/testdata/tiny not committed yet")
	}
	for _, dt := range []weights.DType{weights.F32, weights.F16} {
		out := filepath.Join(t.TempDir(), "tiny.gomps")
		_, err := weights.Convert(dir, out, weights.ConvertOptions{DType: dt, Name: "gomps/tiny"})
		require.NoError(t, err)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		name := "tiny-" + strings.ToLower(dt.String()) + ".sha256"
		if _, err := os.Stat(filepath.Join("testdata", "golden", name)); err != nil && !*update {
			if os.Getenv("CI") == "true" {
				t.Fatalf("testdata/golden/%s missing: run go test ./weights -run TestConvertGolden -update and commit it", name)
			}
			t.Skipf("testdata/golden/%s missing: run go test ./weights -run TestConvertGolden -update", name)
		}
		checkGolden(t, name, b)
	}
}

func checkGolden(t *testing.T, name string, data []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	got := fmt.Sprintf("%x  %d bytes\n", sha256.Sum256(data), len(data))
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden; run go test ./weights -run TestConvertGolden -update")
	assert.Equal(t, string(want), got, "converter output changed; if intended, rerun with -update and commit")
}

// nativeFixture returns the bytes of a valid native file (tiny, F32).
func nativeFixture(t *testing.T) []byte {
	t.Helper()
	dir, _ := synthDir(t, tinyOpts(21))
	b, err := os.ReadFile(convert(t, dir, weights.NativeOptions{Name: "fixture"}))
	require.NoError(t, err)
	return b
}

// fixCRC rewrites the header checksum after a mutation.
func fixCRC(b []byte) {
	hs := binary.LittleEndian.Uint32(b[12:])
	if hs < 256 || int(hs) > len(b) {
		return
	}
	binary.LittleEndian.PutUint32(b[16:], weights.HeaderCRC(b[:hs]))
}

// Offsets from FORMAT.md, written out here so the test checks the spec.
const (
	entry0   = 256 // first tensor table entry
	entrySz  = 128
	slotSize = 16384
)

func put32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
}

func put64(off int, v uint64) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[off:], v); return b }
}

func add64(off int, d int64) func([]byte) []byte {
	return func(b []byte) []byte {
		binary.LittleEndian.PutUint64(b[off:], uint64(int64(binary.LittleEndian.Uint64(b[off:]))+d))
		return b
	}
}

func setByte(off int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[off] = v; return b }
}

func tensorOff(b []byte, k int) int {
	return int(binary.LittleEndian.Uint64(b[entry0+entrySz*k+88:]))
}

type nativeRuleCase struct {
	name   string
	mutate func([]byte) []byte
	keep   bool // keep the header CRC as it was
	rule   error
	names  string // the field or tensor the error names
}

// apply returns a mutated copy of valid, its header CRC rewritten unless
// the case keeps it.
func (c nativeRuleCase) apply(valid []byte) []byte {
	b := c.mutate(bytes.Clone(valid))
	if !c.keep {
		fixCRC(b)
	}
	return b
}

// nativeRuleCases has one named negative case per rule of FORMAT.md, as
// mutations of a valid file whose last tensor is classifier.bias; they also
// seed FuzzNative.
func nativeRuleCases(valid []byte) []nativeRuleCase {
	last := int(binary.LittleEndian.Uint32(valid[36:])) - 1
	tokOff := int(binary.LittleEndian.Uint64(valid[88:]))
	tokSize := int(binary.LittleEndian.Uint64(valid[96:]))
	return []nativeRuleCase{
		{"rule=size/256", func(b []byte) []byte { return b[:255] }, true, weights.ErrNativeTooSmall, ""},
		{"rule=magic", setByte(0, 'X'), true, weights.ErrNativeMagic, "magic"},
		{"rule=version", put32(8, 2), false, weights.ErrNativeVersion, "version"},
		{"rule=header_size/not_256+128n", put32(12, 256+128*34), false, weights.ErrNativeHeaderSize, "header_size"},
		{"rule=header_size/small", put32(12, 128), false, weights.ErrNativeHeaderSize, "header_size"},
		{"rule=header_size/past_file", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[36:], 1_000_000)
			binary.LittleEndian.PutUint32(b[12:], 256+128*1_000_000)
			return b
		}, true, weights.ErrNativeHeaderSize, "header_size"},
		{"rule=header_crc", setByte(170, 'Z'), true, weights.ErrNativeHeaderCRC, "header_crc32c"},
		{"rule=alignment", put32(20, 4096), false, weights.ErrNativeAlignment, "alignment"},
		{"rule=file_size", add64(24, 1), false, weights.ErrNativeFileSize, "file_size"},
		{"rule=file_size/truncated", func(b []byte) []byte { return b[:len(b)-1] }, true, weights.ErrNativeFileSize, "file_size"},
		{"rule=dtype/bf16_reserved", put32(32, 2), false, weights.ErrNativeDType, "dtype"},
		{"rule=arch", put32(40, 2), false, weights.ErrNativeArch, "arch"},
		{"rule=config/vocab_size", put32(44, 0), false, weights.ErrNativeConfig, "vocab_size"},
		{"rule=config/hidden_multiple_of_heads", put32(56, 3), false, weights.ErrNativeConfig, "hidden_size"},
		{"rule=config/num_layers", put32(52, 129), false, weights.ErrNativeConfig, "num_layers"},
		{"rule=config/intermediate_size", put32(60, 65537), false, weights.ErrNativeConfig, "intermediate_size"},
		{"rule=config/max_position", put32(64, 2), false, weights.ErrNativeConfig, "max_position"},
		{"rule=config/type_vocab_size", put32(68, 1), false, weights.ErrNativeConfig, "type_vocab_size"},
		{"rule=config/pad_token_id", put32(72, 64), false, weights.ErrNativeConfig, "pad_token_id"},
		{"rule=config/eps_nan", put64(80, math.Float64bits(math.NaN())), false, weights.ErrNativeConfig, "layer_norm_eps"},
		{"rule=config/eps_one", put64(80, math.Float64bits(1)), false, weights.ErrNativeConfig, "layer_norm_eps"},
		{"rule=tokenizer/offset", add64(88, slotSize), false, weights.ErrNativeTokenizer, "tokenizer_offset"},
		{"rule=tokenizer/size_zero", put64(96, 0), false, weights.ErrNativeTokenizer, "tokenizer_size"},
		{"rule=tokenizer/size_cap", put64(96, 64<<20+1), false, weights.ErrNativeTokenizer, "tokenizer_size"},
		{"rule=tokenizer/slot_bounds", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[96:], uint64(len(b)))
			return b
		}, false, weights.ErrNativeTokenizer, "tokenizer_size"},
		{"rule=n_tensors", put32(52, 3), false, weights.ErrNativeTensorCount, "n_tensors"},
		{"rule=tensor/name", setByte(entry0+entrySz*5+1, 'X'), false, weights.ErrNativeTensorName, "layer.0.qkv.weight"},
		{"rule=tensor/name_padding", setByte(entry0+entrySz*0+63, 'X'), false, weights.ErrNativeTensorName, "embeddings.word"},
		{"rule=tensor/ndim", put32(entry0+entrySz*3+64, 2), false, weights.ErrNativeTensorNDim, "embeddings.ln.gamma"},
		{"rule=tensor/shape", put64(entry0+72, 63), false, weights.ErrNativeTensorShape, "embeddings.word"},
		{"rule=tensor/shape_1d_second_dim", put64(entry0+entrySz*4+80, 1), false, weights.ErrNativeTensorShape, "embeddings.ln.beta"},
		{"rule=tensor/offset_contiguous", add64(entry0+entrySz*1+88, slotSize), false, weights.ErrNativeTensorOffset, "embeddings.position"},
		{"rule=tensor/offset_aligned", add64(entry0+entrySz*1+88, 4), false, weights.ErrNativeTensorOffset, "embeddings.position"},
		{"rule=tensor/size", add64(entry0+entrySz*2+96, -4), false, weights.ErrNativeTensorSize, "embeddings.token_type"},
		{"rule=tensor/size_overflow", put64(entry0+entrySz*2+96, math.MaxUint64), false, weights.ErrNativeTensorSize, "embeddings.token_type"},
		{"rule=tensor/slot_bounds", func(b []byte) []byte {
			b = b[:len(b)-slotSize]
			binary.LittleEndian.PutUint64(b[24:], uint64(len(b)))
			return b
		}, false, weights.ErrNativeTensorBounds, "classifier.bias"},
		{"rule=file_size/last_slot_end", func(b []byte) []byte {
			b = append(b, make([]byte, slotSize)...)
			binary.LittleEndian.PutUint64(b[24:], uint64(len(b)))
			return b
		}, false, weights.ErrNativeSlotsEnd, "file_size"},
		{"rule=name/nul_padding", setByte(168+30, 'x'), false, weights.ErrNativeName, "name"},
		{"rule=name/utf8", func(b []byte) []byte { copy(b[168:], "\xff\xfe"); return b }, false, weights.ErrNativeName, "name"},
		{"rule=reserved/76", put32(76, 1), false, weights.ErrNativeReserved, "reserved"},
		{"rule=reserved/248", setByte(255, 1), false, weights.ErrNativeReserved, "reserved"},
		{"rule=reserved/entry_68", put32(entry0+entrySz*7+68, 1), false, weights.ErrNativeReserved, "layer.0.attn_out.weight"},
		{"rule=reserved/entry_108", setByte(entry0+entrySz*7+127, 1), false, weights.ErrNativeReserved, "layer.0.attn_out.weight"},
		{"rule=padding/header", func(b []byte) []byte { b[tokOff-1] = 1; return b }, true, weights.ErrNativePadding, "header_size"},
		{"rule=padding/tokenizer_slot", func(b []byte) []byte { b[tokOff+tokSize] = 1; return b }, true, weights.ErrNativePadding, "tokenizer_size"},
		{"rule=padding/tensor_slot", func(b []byte) []byte { b[tensorOff(b, last)+4] = 1; return b }, true, weights.ErrNativePadding, "classifier.bias"},
		{"rule=checksum/tokenizer_sha256", func(b []byte) []byte { b[tokOff+1] ^= 1; return b }, true, weights.ErrNativeTokenizerSum, "tokenizer_sha256"},
		{"rule=checksum/tensor_crc32c", func(b []byte) []byte { b[tensorOff(b, 9)+7] ^= 0x10; return b }, true, weights.ErrNativeTensorCRC, "layer.0.attn_ln.gamma"},
	}
}

func TestNativeRules(t *testing.T) {
	t.Parallel()
	valid := nativeFixture(t)
	_, err := weights.ParseNativeBytes("valid", valid)
	require.NoError(t, err, "fixture is valid")
	for _, c := range nativeRuleCases(valid) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := c.apply(valid)
			path := filepath.Join(t.TempDir(), "bad.gomps")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			n, err := weights.OpenNative(path)
			require.Error(t, err)
			assert.Nil(t, n)
			assert.ErrorIs(t, err, c.rule, "rule")
			assert.ErrorContains(t, err, "weights: "+path, "names the file")
			assert.ErrorContains(t, err, c.names, "names the field or tensor")
		})
	}
}

// TestNativeHeaderRules: every rule of the preamble, the tensor table, the
// name and the reserved fields is decided from the header alone (the steps
// before the data are read), and those steps decode the same table and name
// as the full parse.
func TestNativeHeaderRules(t *testing.T) {
	t.Parallel()
	valid := nativeFixture(t)
	full, err := weights.ParseNativeBytes("valid", valid)
	require.NoError(t, err)
	tensors, name, err := weights.ParseNativeHeader("valid", valid)
	require.NoError(t, err, "a valid header passes without reading the data")
	assert.Equal(t, full.Tensors(), tensors, "tensor table")
	assert.Equal(t, "fixture", name, "name")
	dataRules := []error{weights.ErrNativePadding, weights.ErrNativeTokenizerSum, weights.ErrNativeTensorCRC}
	for _, c := range nativeRuleCases(valid) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := c.apply(valid)
			_, _, err := weights.ParseNativeHeader("bad", b)
			for _, r := range dataRules {
				if c.rule == r {
					assert.NoError(t, err, "a rule of the data passes the header steps")
					return
				}
			}
			assert.ErrorIs(t, err, c.rule, "rule decided from the header")
			assert.ErrorContains(t, err, c.names, "names the field or tensor")
		})
	}
}

// TestNativeTruncated: every truncation is an error, never a panic.
func TestNativeTruncated(t *testing.T) {
	t.Parallel()
	valid := nativeFixture(t)
	for _, n := range []int{0, 1, 8, 255, 256, 257, 1000, entry0 + entrySz, slotSize - 1, slotSize, slotSize + 1, len(valid) / 2, len(valid) - slotSize, len(valid) - 1} {
		_, err := weights.ParseNativeBytes("t", valid[:n])
		assert.Error(t, err, "truncated to %d", n)
	}
}

func TestConvertAtomicAndNames(t *testing.T) {
	t.Parallel()
	dir, _ := synthDir(t, tinyOpts(31))
	outDir := t.TempDir()
	dst := filepath.Join(outDir, "m.gomps")
	var progress []string
	res, err := weights.Convert(dir, dst, weights.ConvertOptions{DType: weights.F16,
		Progress: func(done, total int, name string) {
			progress = append(progress, fmt.Sprintf("%d/%d %s", done, total, name))
		}})
	require.NoError(t, err)
	assert.Equal(t, filepath.Base(dir), res.Name, "default name is the directory's")
	assert.Equal(t, weights.F16, res.DType)
	assert.Len(t, progress, weightstest.TinyConfig().NumTensors(), "progress per tensor")
	assert.Equal(t, "33/33 classifier.bias", progress[len(progress)-1])
	st, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, res.FileSize, st.Size())

	// A failing conversion leaves neither dst nor a temporary file.
	bad, _ := synthDir(t, weightstest.Options{Config: weightstest.TinyConfig(), Tokenizer: []byte{}})
	dst2 := filepath.Join(outDir, "bad.gomps")
	_, err = weights.Convert(bad, dst2, weights.ConvertOptions{})
	require.Error(t, err)
	entries, err := os.ReadDir(outDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the first output remains")
	assert.Equal(t, "m.gomps", entries[0].Name())

	_, err = weights.Convert(dir, dst, weights.ConvertOptions{Name: strings.Repeat("x", 81)})
	assert.ErrorContains(t, err, "at most 80 bytes")
	_, err = weights.Convert(filepath.Join(dir, "config.json"), dst, weights.ConvertOptions{})
	assert.ErrorContains(t, err, "not a directory")
}

// TestConvertNonFinite: NaN weights and F16 overflow are errors naming the
// tensor.
func TestConvertNonFinite(t *testing.T) {
	t.Parallel()
	o := tinyOpts(41)
	o.Skip = []string{"encoder.layer.0.output.dense.bias"}
	big := make([]float32, 32)
	big[3] = 1e6
	data, err := weights.EncodeFloat32(big, weights.F32)
	require.NoError(t, err)
	o.Extra = []weights.STWrite{{Name: "bert.encoder.layer.0.output.dense.bias", DType: "F32", Shape: []int64{32}, Data: data}}
	dir, _ := synthDir(t, o)
	m, err := weights.LoadHFDir(dir)
	require.NoError(t, err)
	defer m.Close()
	err = m.WriteNative(&bytes.Buffer{}, weights.NativeOptions{DType: weights.F16})
	assert.ErrorIs(t, err, weights.ErrBadValue)
	assert.ErrorContains(t, err, "bert.encoder.layer.0.output.dense.bias")
	assert.ErrorContains(t, err, "overflows F16")
	assert.NoError(t, m.WriteNative(&bytes.Buffer{}, weights.NativeOptions{DType: weights.F32}), "1e6 is fine in F32")

	big[3] = float32(math.NaN())
	data, err = weights.EncodeFloat32(big, weights.F32)
	require.NoError(t, err)
	o.Extra[0].Data = data
	dir, _ = synthDir(t, o)
	m2, err := weights.LoadHFDir(dir)
	require.NoError(t, err)
	defer m2.Close()
	err = m2.WriteNative(&bytes.Buffer{}, weights.NativeOptions{})
	assert.ErrorIs(t, err, weights.ErrBadValue)
	assert.ErrorContains(t, err, "NaN")
}
