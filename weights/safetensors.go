package weights

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// MaxSafetensorsHeader is the largest safetensors JSON header accepted, the
// limit of the reference implementation (100 MB).
const MaxSafetensorsHeader = 100_000_000

// dtypeBits gives the element size in bits of every dtype the safetensors
// format defines. Only F32, F16 and BF16 are usable as weights; the others are
// parsed and validated so a file carrying e.g. an I64 position_ids buffer
// opens.
var dtypeBits = map[string]uint64{
	"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32,
	"I64": 64, "U64": 64, "F64": 64, "C64": 64,
	"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

// STTensor describes one tensor of a safetensors file.
type STTensor struct {
	Name  string
	DType string  // as spelled in the file: "F32", "I64", ...
	Shape []int64 // [] is a scalar
	Begin int64   // data_offsets, relative to the start of the data section
	End   int64
}

// Safetensors is an open, validated safetensors file. Tensor bytes are read
// (or, with mmap, paged in) only when asked for. Methods are safe for
// concurrent use; Close must not race with other calls.
type Safetensors struct {
	path      string
	b         blob
	dataStart int64
	tensors   []STTensor // in header order
	byName    map[string]int
	metadata  map[string]string

	mu     sync.Mutex
	closed bool
}

var _ io.Closer = (*Safetensors)(nil)

// OpenSafetensors opens and validates the safetensors file at path against
// every rule of the format: header length within 100 MB and the file, UTF-8
// JSON object, no duplicate keys, __metadata__ a string map, known dtypes,
// overflow-checked shape sizes matching data_offsets, offsets in bounds,
// contiguous and covering the data section exactly. Only the header is read.
func OpenSafetensors(path string) (*Safetensors, error) { return openParsed(path, parseSafetensors) }

func parseSafetensors(path string, b blob) (*Safetensors, error) {
	fail := func(tensor string, rule error, format string, args ...any) error {
		return &Error{File: path, Tensor: tensor, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	size := b.Size()
	if size < 8 {
		return nil, fail("", ErrSTTooSmall, "%d bytes", size)
	}
	lenBytes, err := b.Bytes(0, 8)
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBytes)
	if n > MaxSafetensorsHeader {
		return nil, fail("", ErrSTHeaderTooLarge, "header length %d", n)
	}
	if n > uint64(size-8) {
		return nil, fail("", ErrSTHeaderLength, "header length %d, file %d bytes", n, size)
	}
	header, err := b.Bytes(8, int64(n))
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	if !utf8.Valid(header) {
		return nil, fail("", ErrSTHeaderUTF8, "")
	}
	tensors, meta, err := parseSTHeader(header)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = path
			return nil, e
		}
		return nil, fail("", ErrSTHeaderJSON, "%v", err)
	}
	dataStart := 8 + int64(n)
	dataLen := size - dataStart
	for _, t := range tensors {
		bitsPer, ok := dtypeBits[t.DType]
		if !ok {
			return nil, fail(t.Name, ErrSTUnknownDType, "%q", t.DType)
		}
		elems := uint64(1)
		for _, d := range t.Shape {
			hi, lo := bits.Mul64(elems, uint64(d))
			if hi != 0 {
				return nil, fail(t.Name, ErrSTSizeOverflow, "shape %v", t.Shape)
			}
			elems = lo
		}
		hi, nbits := bits.Mul64(elems, bitsPer)
		if hi != 0 || nbits/8 > math.MaxInt64 {
			return nil, fail(t.Name, ErrSTSizeOverflow, "shape %v of %s", t.Shape, t.DType)
		}
		if t.End < t.Begin {
			return nil, fail(t.Name, ErrSTOffsetBounds, "data_offsets [%d, %d] end before begin", t.Begin, t.End)
		}
		if t.End > dataLen {
			return nil, fail(t.Name, ErrSTOffsetBounds, "data_offsets [%d, %d], data section %d bytes", t.Begin, t.End, dataLen)
		}
		if nbits%8 != 0 || nbits/8 != uint64(t.End-t.Begin) {
			return nil, fail(t.Name, ErrSTShapeMismatch, "%s %v is %d bits, data_offsets [%d, %d] hold %d bytes",
				t.DType, t.Shape, nbits, t.Begin, t.End, t.End-t.Begin)
		}
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Or(cmp.Compare(tensors[i].Begin, tensors[j].Begin), cmp.Compare(tensors[i].End, tensors[j].End))
	})
	var end int64
	for _, i := range order {
		t := tensors[i]
		if t.Begin != end {
			return nil, fail(t.Name, ErrSTNotContiguous, "data_offsets [%d, %d], previous tensor ends at %d", t.Begin, t.End, end)
		}
		end = t.End
	}
	if end != dataLen {
		return nil, fail("", ErrSTIncompleteData, "tensors end at %d, data section is %d bytes", end, dataLen)
	}
	byName := make(map[string]int, len(tensors))
	for i, t := range tensors {
		byName[t.Name] = i
	}
	return &Safetensors{path: path, b: b, dataStart: dataStart, tensors: tensors, byName: byName, metadata: meta}, nil
}

// parseSTHeader parses the JSON header strictly: one object, no duplicate
// keys at any level, nothing but whitespace after it.
func parseSTHeader(header []byte) ([]STTensor, map[string]string, error) {
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, &Error{Rule: ErrSTHeaderJSON, Detail: "does not start with '{'"}
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, err
	}
	var tensors []STTensor
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, nil, err
		}
		if seen[key] {
			return nil, nil, &Error{Tensor: key, Rule: ErrSTDuplicateKey}
		}
		seen[key] = true
		if key == "__metadata__" {
			if meta, err = parseSTMetadata(dec); err != nil {
				return nil, nil, err
			}
			continue
		}
		t, err := parseSTTensor(dec, key)
		if err != nil {
			return nil, nil, err
		}
		tensors = append(tensors, t)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, &Error{Rule: ErrSTHeaderJSON, Detail: "data after the header object"}
	}
	return tensors, meta, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return &Error{Rule: ErrSTHeaderJSON, Detail: fmt.Sprintf("want %q, got %v", d, tok)}
	}
	return nil
}

func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
	}
	s, ok := tok.(string)
	if !ok {
		return "", &Error{Rule: ErrSTHeaderJSON, Detail: fmt.Sprintf("want a string, got %v", tok)}
	}
	return s, nil
}

func parseSTMetadata(dec *json.Decoder) (map[string]string, error) {
	bad := func(detail string) error {
		return &Error{Tensor: "__metadata__", Rule: ErrSTMetadata, Detail: detail}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad(fmt.Sprintf("got %v", tok))
	}
	meta := map[string]string{}
	for dec.More() {
		k, err := stringToken(dec)
		if err != nil {
			return nil, err
		}
		if _, dup := meta[k]; dup {
			return nil, &Error{Tensor: "__metadata__." + k, Rule: ErrSTDuplicateKey}
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
		}
		v, ok := tok.(string)
		if !ok {
			return nil, bad(fmt.Sprintf("value of %q is %v, not a string", k, tok))
		}
		meta[k] = v
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	return meta, nil
}

func parseSTTensor(dec *json.Decoder, name string) (STTensor, error) {
	t := STTensor{Name: name}
	bad := func(detail string) error {
		return &Error{Tensor: name, Rule: ErrSTTensorInfo, Detail: detail}
	}
	tok, err := dec.Token()
	if err != nil {
		return t, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return t, bad(fmt.Sprintf("got %v", tok))
	}
	seen := map[string]bool{}
	var offsets []int64
	for dec.More() {
		k, err := stringToken(dec)
		if err != nil {
			return t, err
		}
		if seen[k] {
			return t, &Error{Tensor: name, Rule: ErrSTDuplicateKey, Detail: fmt.Sprintf("key %q", k)}
		}
		seen[k] = true
		switch k {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return t, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
			}
			s, ok := tok.(string)
			if !ok {
				return t, bad(fmt.Sprintf("dtype is %v", tok))
			}
			t.DType = s
		case "shape":
			if t.Shape, err = intArray(dec, name, "shape"); err != nil {
				return t, err
			}
			if t.Shape == nil {
				t.Shape = []int64{}
			}
		case "data_offsets":
			if offsets, err = intArray(dec, name, "data_offsets"); err != nil {
				return t, err
			}
			if len(offsets) != 2 {
				return t, bad(fmt.Sprintf("data_offsets has %d entries, want 2", len(offsets)))
			}
		default:
			// Unknown fields are ignored, as by the reference implementation,
			// but must still be valid JSON.
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return t, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return t, err
	}
	if !seen["dtype"] || !seen["shape"] || !seen["data_offsets"] {
		return t, bad("missing dtype, shape or data_offsets")
	}
	t.Begin, t.End = offsets[0], offsets[1]
	return t, nil
}

// intArray reads a JSON array of non-negative integers.
func intArray(dec *json.Decoder, tensor, field string) ([]int64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &Error{Tensor: tensor, Rule: ErrSTTensorInfo, Detail: fmt.Sprintf("%s is %v, not an array", field, tok)}
	}
	var out []int64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &Error{Rule: ErrSTHeaderJSON, Detail: err.Error()}
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, &Error{Tensor: tensor, Rule: ErrSTTensorInfo, Detail: fmt.Sprintf("%s holds %v", field, tok)}
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, &Error{Tensor: tensor, Rule: ErrSTSizeOverflow, Detail: fmt.Sprintf("%s holds %s", field, num)}
			}
			return nil, &Error{Tensor: tensor, Rule: ErrSTTensorInfo, Detail: fmt.Sprintf("%s holds %s, not a non-negative integer", field, num)}
		}
		if v > math.MaxInt64 {
			return nil, &Error{Tensor: tensor, Rule: ErrSTSizeOverflow, Detail: fmt.Sprintf("%s holds %s", field, num)}
		}
		out = append(out, int64(v))
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, err
	}
	return out, nil
}

// Path returns the file's path.
func (s *Safetensors) Path() string { return s.path }

// Metadata returns the __metadata__ map (nil when absent). Do not modify it.
func (s *Safetensors) Metadata() map[string]string { return s.metadata }

// Tensors returns the tensor descriptions in header order.
func (s *Safetensors) Tensors() []STTensor {
	out := slices.Clone(s.tensors)
	for i := range out {
		out[i].Shape = slices.Clone(out[i].Shape)
	}
	return out
}

// Info returns the description of the named tensor (its Shape must not be
// modified).
func (s *Safetensors) Info(name string) (STTensor, bool) {
	i, ok := s.byName[name]
	if !ok {
		return STTensor{}, false
	}
	return s.tensors[i], true
}

// Bytes returns the raw little-endian bytes of the named tensor. With mmap
// the slice aliases the mapping: do not modify it or use it after Close.
func (s *Safetensors) Bytes(name string) ([]byte, STTensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, STTensor{}, &Error{File: s.path, Tensor: name, Rule: ErrClosed}
	}
	t, ok := s.Info(name)
	if !ok {
		return nil, t, &Error{File: s.path, Tensor: name, Rule: ErrSTTensorNotFound}
	}
	data, err := s.b.Bytes(s.dataStart+t.Begin, t.End-t.Begin)
	if err != nil {
		return nil, t, &Error{File: s.path, Tensor: name, Rule: ErrSTOffsetBounds, Detail: err.Error()}
	}
	return data, t, nil
}

// Float32 returns the named tensor converted to float32 in a new slice. The
// tensor must be F32, F16 or BF16.
func (s *Safetensors) Float32(name string) ([]float32, error) {
	data, t, err := s.Bytes(name)
	if err != nil {
		return nil, err
	}
	var dt DType
	switch t.DType {
	case "F32":
		dt = F32
	case "F16":
		dt = F16
	case "BF16":
		dt = BF16
	default:
		return nil, &Error{File: s.path, Tensor: name, Rule: ErrSTUnsupportedType, Detail: t.DType}
	}
	return decodeFloat32(data, dt), nil
}

// Close releases the file. It is idempotent.
func (s *Safetensors) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.b.Close()
}

// STWrite is one tensor to write with WriteSafetensors.
type STWrite struct {
	Name  string
	DType string // a safetensors dtype name
	Shape []int64
	Data  []byte // little-endian, exactly the size shape and dtype give
}

// WriteSafetensors writes tensors in the safetensors format: header keys and
// data sorted by name, header padded with spaces to a multiple of 8 bytes.
// The output is deterministic. Meant for tests and tools.
func WriteSafetensors(w io.Writer, tensors []STWrite, metadata map[string]string) error {
	type info struct {
		DType       string   `json:"dtype"`
		Shape       []int64  `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b STWrite) int { return cmp.Compare(a.Name, b.Name) })
	head := map[string]any{}
	if metadata != nil {
		head["__metadata__"] = metadata
	}
	var off int64
	for _, t := range sorted {
		if _, dup := head[t.Name]; dup {
			return fmt.Errorf("weights: tensor %q: written twice", t.Name)
		}
		bitsPer, ok := dtypeBits[t.DType]
		if !ok {
			return fmt.Errorf("weights: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n := bitsPer
		for _, d := range t.Shape {
			n *= uint64(d)
		}
		if n%8 != 0 || n/8 != uint64(len(t.Data)) {
			return fmt.Errorf("weights: tensor %q: %d data bytes for %s %v", t.Name, len(t.Data), t.DType, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		head[t.Name] = info{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hj, err := json.Marshal(head)
	if err != nil {
		return fmt.Errorf("weights: safetensors header: %w", err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hj)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(hj); err != nil {
		return err
	}
	for _, t := range sorted {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}
