//go:build cgo

package wfile

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// convert writes the weightstest tiny model through the Go writer.
func convert(t testing.TB, dt weights.DType) string {
	t.Helper()
	dir := t.TempDir()
	src := t.TempDir()
	_, err := weightstest.WriteHFDir(src, weightstest.Options{Config: weightstest.TinyConfig(), Seed: 11})
	require.NoError(t, err)
	dst := filepath.Join(dir, "tiny.gomps")
	_, err = weights.Convert(src, dst, weights.ConvertOptions{DType: dt, Name: "gomps/wfile-tiny"})
	require.NoError(t, err)
	return dst
}

func TestReaderAgreesWithGoWriterAndReader(t *testing.T) {
	for _, dt := range []weights.DType{weights.F32, weights.F16} {
		t.Run("dtype="+dt.String(), func(t *testing.T) {
			path := convert(t, dt)
			info, err := Check(path, true)
			require.NoError(t, err)
			n, err := weights.OpenNative(path)
			require.NoError(t, err)
			defer n.Close()
			cfg := n.Config()
			assert.Equal(t, uint32(dt), info.DType, "dtype")
			assert.Equal(t, cfg.VocabSize, info.VocabSize, "vocab_size")
			assert.Equal(t, cfg.HiddenSize, info.HiddenSize, "hidden_size")
			assert.Equal(t, cfg.NumLayers, info.NumLayers, "num_layers")
			assert.Equal(t, cfg.NumHeads, info.NumHeads, "num_heads")
			assert.Equal(t, cfg.IntermediateSize, info.IntermediateSize, "intermediate_size")
			assert.Equal(t, cfg.MaxPosition, info.MaxPosition, "max_position")
			assert.Equal(t, cfg.TypeVocabSize, info.TypeVocabSize, "type_vocab_size")
			assert.Equal(t, cfg.PadTokenID, info.PadTokenID, "pad_token_id")
			assert.Equal(t, cfg.LayerNormEps, info.LayerNormEps, "layer_norm_eps")
			assert.Equal(t, "gomps/wfile-tiny", info.Name, "name")
			assert.Equal(t, int64(len(n.Tokenizer())), info.Tokenizer, "tokenizer size")
			assert.Equal(t, int64(16384), info.TokenizerOffset, "tokenizer offset")
			assert.True(t, info.TensorsAligned, "tensor data page-aligned")
			assert.True(t, info.DataInPlace, "tensor data points into the mapping at its offset")
			want := n.Tensors()
			require.Len(t, info.Tensors, len(want))
			es := uint64(4)
			if dt == weights.F16 {
				es = 2
			}
			for i, w := range want {
				g := info.Tensors[i]
				assert.Equal(t, w.Name, g.Name, "tensor %d name", i)
				assert.Equal(t, len(w.Shape), g.NDim, "%s ndim", w.Name)
				assert.Equal(t, uint64(w.Shape[0]), g.Shape[0], "%s shape[0]", w.Name)
				if len(w.Shape) == 2 {
					assert.Equal(t, uint64(w.Shape[1]), g.Shape[1], "%s shape[1]", w.Name)
				}
				assert.Equal(t, uint64(w.Offset), g.Offset, "%s offset", w.Name)
				assert.Equal(t, uint64(w.Size), g.Size, "%s size", w.Name)
				assert.Equal(t, g.Elems*es, g.Size, "%s elems", w.Name)
				assert.Equal(t, (g.Size+16383)/16384*16384, g.Slot, "%s slot", w.Name)
			}
		})
	}
}

// mutation helpers over a file from the Go writer
type file struct {
	b       []byte
	tensors []weights.NativeTensor
}

func (f *file) entry(i int) int { return 256 + 128*i }

func (f *file) reseal() {
	le := binary.LittleEndian
	hs := le.Uint32(f.b[12:])
	le.PutUint32(f.b[16:], 0)
	le.PutUint32(f.b[16:], crc32.Checksum(f.b[:hs], castagnoli))
}

func TestReaderRejectsCorruptFiles(t *testing.T) {
	path := convert(t, weights.F32)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	n, err := weights.OpenNative(path)
	require.NoError(t, err)
	ts := n.Tensors()
	require.NoError(t, n.Close())
	le := binary.LittleEndian
	last := len(ts) - 1
	cases := []struct {
		name   string
		mutate func(f *file)
		code   int
		want   []string
	}{
		{"truncated_header", func(f *file) { f.b = f.b[:255] }, StatusFormat, []string{"shorter than the 256-byte preamble"}},
		{"truncated_tail", func(f *file) { f.b = f.b[:len(f.b)-16384] }, StatusFormat, []string{"file_size"}},
		{"extended", func(f *file) { f.b = append(f.b, 0) }, StatusFormat, []string{"file_size"}},
		{"magic", func(f *file) { f.b[0] = 'X' }, StatusFormat, []string{"magic"}},
		{"version", func(f *file) { le.PutUint32(f.b[8:], 2); f.reseal() }, StatusFormat, []string{"version: 2"}},
		{"header_size", func(f *file) { le.PutUint32(f.b[12:], 300) }, StatusFormat, []string{"header_size: 300"}},
		{"header_size_huge", func(f *file) { le.PutUint32(f.b[12:], 2<<20) }, StatusFormat, []string{"header_size", "outside"}},
		{"header_crc", func(f *file) { f.b[170] ^= 1 }, StatusFormat, []string{"header_crc32c"}},
		{"alignment", func(f *file) { le.PutUint32(f.b[20:], 4096); f.reseal() }, StatusFormat, []string{"alignment: 4096"}},
		{"dtype_bf16", func(f *file) { le.PutUint32(f.b[32:], 2); f.reseal() }, StatusFormat, []string{"dtype", "BF16"}},
		{"dtype_7", func(f *file) { le.PutUint32(f.b[32:], 7); f.reseal() }, StatusFormat, []string{"dtype: 7"}},
		{"arch", func(f *file) { le.PutUint32(f.b[40:], 2); f.reseal() }, StatusFormat, []string{"arch: 2"}},
		{"vocab_0", func(f *file) { le.PutUint32(f.b[44:], 0); f.reseal() }, StatusFormat, []string{"vocab_size: 0"}},
		{"hidden_range", func(f *file) { le.PutUint32(f.b[48:], 9000); f.reseal() }, StatusFormat, []string{"hidden_size: 9000"}},
		{"max_position_2", func(f *file) { le.PutUint32(f.b[64:], 2); f.reseal() }, StatusFormat, []string{"max_position: 2"}},
		{"type_vocab_17", func(f *file) { le.PutUint32(f.b[68:], 17); f.reseal() }, StatusFormat, []string{"type_vocab_size: 17"}},
		{"heads_divide", func(f *file) { le.PutUint32(f.b[56:], 3); f.reseal() }, StatusFormat, []string{"multiple of num_heads"}},
		{"pad_token", func(f *file) { le.PutUint32(f.b[72:], 64); f.reseal() }, StatusFormat, []string{"pad_token_id: 64"}},
		{"reserved_76", func(f *file) { f.b[76] = 1; f.reseal() }, StatusFormat, []string{"offset 76"}},
		{"eps_nan", func(f *file) { le.PutUint64(f.b[80:], math.Float64bits(math.NaN())); f.reseal() }, StatusFormat, []string{"layer_norm_eps"}},
		{"eps_1", func(f *file) { le.PutUint64(f.b[80:], math.Float64bits(1)); f.reseal() }, StatusFormat, []string{"layer_norm_eps"}},
		{"tokenizer_offset", func(f *file) { le.PutUint64(f.b[88:], 32768); f.reseal() }, StatusFormat, []string{"tokenizer_offset"}},
		{"tokenizer_size_0", func(f *file) { le.PutUint64(f.b[96:], 0); f.reseal() }, StatusFormat, []string{"tokenizer_size: 0"}},
		{"tokenizer_slot", func(f *file) { le.PutUint64(f.b[96:], 64<<20); f.reseal() }, StatusFormat, []string{"tokenizer slot", "past the end"}},
		{"tokenizer_sha", func(f *file) { f.b[16384+3] ^= 1 }, StatusFormat, []string{"tokenizer_sha256"}},
		{"tokenizer_padding", func(f *file) { f.b[2*16384-1] = 1 }, StatusFormat, []string{"tokenizer slot padding"}},
		{"name_padding", func(f *file) { f.b[168+70] = 'x'; f.reseal() }, StatusFormat, []string{"name: bytes after the first NUL"}},
		{"name_utf8", func(f *file) { f.b[168] = 0xff; f.reseal() }, StatusFormat, []string{"name: not valid UTF-8"}},
		{"reserved_248", func(f *file) { f.b[250] = 1; f.reseal() }, StatusFormat, []string{"offset 248"}},
		{"layers", func(f *file) { le.PutUint32(f.b[52:], 3); f.reseal() }, StatusFormat, []string{"n_tensors"}},
		{"header_padding", func(f *file) { f.b[f.entry(len(f.tensors))+5] = 1 }, StatusFormat, []string{"padding after the header"}},
		{"tensor_name", func(f *file) { f.b[f.entry(3)] = 'X'; f.reseal() }, StatusFormat, []string{"tensor 3", "embeddings.ln.gamma"}},
		{"tensor_name_tail", func(f *file) { f.b[f.entry(3)+63] = 'X'; f.reseal() }, StatusFormat, []string{"tensor 3", "embeddings.ln.gamma"}},
		{"tensor_ndim", func(f *file) { le.PutUint32(f.b[f.entry(4)+64:], 2); f.reseal() }, StatusFormat, []string{"embeddings.ln.beta", "ndim 2"}},
		{"tensor_shape", func(f *file) { le.PutUint64(f.b[f.entry(5)+72:], 7); f.reseal() }, StatusFormat, []string{"layer.0.qkv.weight", "shape"}},
		{"tensor_offset_align", func(f *file) {
			le.PutUint64(f.b[f.entry(6)+88:], le.Uint64(f.b[f.entry(6)+88:])+64)
			f.reseal()
		}, StatusFormat, []string{"layer.0.qkv.bias", "not a multiple of 16384"}},
		{"tensor_offset_gap", func(f *file) {
			le.PutUint64(f.b[f.entry(6)+88:], le.Uint64(f.b[f.entry(6)+88:])+16384)
			f.reseal()
		}, StatusFormat, []string{"layer.0.qkv.bias", "end of the previous slot"}},
		{"tensor_size", func(f *file) { le.PutUint64(f.b[f.entry(1)+96:], ^uint64(0)); f.reseal() }, StatusFormat, []string{"embeddings.position", "size"}},
		{"tensor_reserved_68", func(f *file) { f.b[f.entry(2)+68] = 1; f.reseal() }, StatusFormat, []string{"embeddings.token_type", "reserved"}},
		{"tensor_reserved_110", func(f *file) { f.b[f.entry(2)+110] = 1; f.reseal() }, StatusFormat, []string{"embeddings.token_type", "reserved"}},
		{"tensor_crc", func(f *file) { f.b[f.tensors[8].Offset+5] ^= 0x40 }, StatusFormat, []string{"layer.0.attn_out.bias", "crc32c"}},
		{"last_tensor_crc", func(f *file) { f.b[f.tensors[last].Offset] ^= 1 }, StatusFormat, []string{"classifier.bias", "crc32c"}},
		{"slot_padding", func(f *file) { f.b[f.tensors[4].Offset+f.tensors[4].Size+3] = 1 }, StatusFormat, []string{"embeddings.ln.beta", "slot padding"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run("file="+c.name, func(t *testing.T) {
			f := &file{b: append([]byte(nil), good...), tensors: ts}
			c.mutate(f)
			p := filepath.Join(dir, c.name+".gomps")
			require.NoError(t, os.WriteFile(p, f.b, 0o644))
			_, err := Check(p, true)
			require.Error(t, err)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, c.code, e.Code, "status of %v", err)
			assert.Contains(t, e.Msg, "weights: "+p+": ", "prefix")
			for _, w := range c.want {
				assert.Contains(t, e.Msg, w)
			}
		})
	}
	t.Run("tokenizer_sha/unverified", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[16384+3] ^= 1
		p := filepath.Join(dir, "tok-unverified.gomps")
		require.NoError(t, os.WriteFile(p, b, 0o644))
		_, err := Check(p, false)
		assert.NoError(t, err, "without GOMPS_WFILE_VERIFY_TOKENIZER the tokenizer bytes are not hashed")
	})
	t.Run("file=missing", func(t *testing.T) {
		_, err := Check(filepath.Join(dir, "absent.gomps"), true)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, StatusIO, e.Code)
		assert.Contains(t, e.Msg, "absent.gomps")
	})
	t.Run("file=directory", func(t *testing.T) {
		_, err := Check(dir, true)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, StatusIO, e.Code)
		assert.Contains(t, e.Msg, "not a regular file")
	})
}

func TestCRC32CMatchesCastagnoli(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 70000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 1000, 16384, 70000} {
		for _, off := range []int{0, 1, 3} { // unaligned starts
			if off+n > len(data) {
				continue
			}
			b := data[off : off+n]
			want := crc32.Checksum(b, castagnoli)
			assert.Equal(t, want, CRC32C(0, b, false), "default path, n=%d off=%d", n, off)
			assert.Equal(t, want, CRC32C(0, b, true), "portable path, n=%d off=%d", n, off)
			// continuing from a previous result is the CRC of the concatenation
			h := n / 2
			assert.Equal(t, want, CRC32C(CRC32C(0, b[:h], false), b[h:], false), "continued, n=%d off=%d", n, off)
			assert.Equal(t, want, CRC32C(CRC32C(0, b[:h], true), b[h:], true), "continued portable, n=%d off=%d", n, off)
		}
	}
	assert.Equal(t, uint32(0xe3069283), CRC32C(0, []byte("123456789"), false), "standard check value")
}

func TestSHA256MatchesStdlib(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for n := 0; n <= 200; n++ { // every padding case: 55, 56, 63, 64, 119, 120 ...
		assert.Equal(t, sha256.Sum256(data[:n]), SHA256(data[:n]), "n=%d", n)
	}
	assert.Equal(t, sha256.Sum256(data), SHA256(data), "n=%d", len(data))
}

// FuzzCheck: the reader returns a status for any bytes, never crashes or
// reads outside the file; a file it accepts, the Go reader accepts too.
func FuzzCheck(f *testing.F) {
	good, err := os.ReadFile(convert(f, weights.F16))
	require.NoError(f, err)
	f.Add(good)
	f.Add(good[:256])
	f.Add([]byte("GOMPSWTS"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.gomps")
		require.NoError(t, os.WriteFile(p, b, 0o644))
		_, cerr := Check(p, true)
		if cerr != nil {
			var e *Error
			require.ErrorAs(t, cerr, &e)
			assert.Contains(t, []int{StatusFormat, StatusIO}, e.Code, "%v", cerr)
			return
		}
		n, gerr := weights.OpenNative(p)
		require.NoError(t, gerr, "the C reader accepted a file the Go reader rejects")
		n.Close()
	})
}
