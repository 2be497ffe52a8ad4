package weights

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"sync"
	"unicode/utf8"
)

// NativeTensor describes one tensor of a native file.
type NativeTensor struct {
	Name   string
	Shape  []int // 1 or 2 dimensions
	Offset int64 // absolute byte offset, a multiple of 16384
	Size   int64 // bytes
	CRC32C uint32
}

// Native is an open, fully validated native weights file (FORMAT.md). It is
// memory-mapped where the platform allows and read through io.ReaderAt
// elsewhere. Methods are safe for concurrent use, but slices returned by
// Tensor alias the mapping: they must not be modified or used after Close.
type Native struct {
	path    string
	b       blob
	size    int64
	cfg     Config
	dtype   DType
	name    string
	tok     []byte
	tokSum  [32]byte
	srcSum  [32]byte
	tensors []NativeTensor
	byName  map[string]int

	mu     sync.Mutex
	closed bool
}

var _ io.Closer = (*Native)(nil)

// OpenNative opens the native weights file at path and checks every rule of
// FORMAT.md, in its order, including the header CRC, the tokenizer SHA-256,
// every tensor's CRC-32C and zero padding; opening therefore reads the whole
// file once. A corrupt or truncated file is an *Error naming the file, the
// field or tensor and the rule.
func OpenNative(path string) (*Native, error) {
	b, err := openBlob(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	n, err := parseNative(path, b)
	if err != nil {
		b.Close()
		return nil, err
	}
	return n, nil
}

func parseNative(path string, b blob) (*Native, error) {
	fail := func(field, tensor string, rule error, format string, args ...any) error {
		return &Error{File: path, Field: field, Tensor: tensor, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	size := b.Size()
	if size < preambleSize {
		return nil, fail("", "", ErrNativeTooSmall, "%d bytes", size)
	}
	pre, err := b.Bytes(0, preambleSize)
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	if string(pre[offMagic:offMagic+8]) != NativeMagic {
		return nil, fail("magic", "", ErrNativeMagic, "%q", pre[offMagic:offMagic+8])
	}
	if v := le.Uint32(pre[offVersion:]); v != NativeVersion {
		return nil, fail("version", "", ErrNativeVersion, "version %d, this reader knows %d", v, NativeVersion)
	}
	hsize := uint64(le.Uint32(pre[offHeaderSize:]))
	ntensors := uint64(le.Uint32(pre[offNTensors:]))
	if hsize < preambleSize || hsize > maxHeaderSize || hsize > uint64(size) || hsize != preambleSize+tableEntrySize*ntensors {
		return nil, fail("header_size", "", ErrNativeHeaderSize,
			"%d; want 256 + 128 * n_tensors (%d), at most 1 MiB and the file size %d", hsize, ntensors, size)
	}
	header, err := b.Bytes(0, int64(hsize))
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	if got, want := le.Uint32(header[offHeaderCRC:]), headerCRC(header); got != want {
		return nil, fail("header_crc32c", "", ErrNativeHeaderCRC, "stored %08x, computed %08x", got, want)
	}
	if a := le.Uint32(pre[offAlignment:]); a != NativeAlignment {
		return nil, fail("alignment", "", ErrNativeAlignment, "%d", a)
	}
	fileSize := le.Uint64(pre[offFileSize:])
	if fileSize != uint64(size) {
		return nil, fail("file_size", "", ErrNativeFileSize, "header says %d, file has %d bytes", fileSize, size)
	}
	dt := DType(le.Uint32(pre[offDType:]))
	if dt != F32 && dt != F16 {
		return nil, fail("dtype", "", ErrNativeDType, "%d; v1 stores 0 (F32) or 1 (F16)", uint32(dt))
	}
	if a := le.Uint32(pre[offArch:]); a != nativeArchBert {
		return nil, fail("arch", "", ErrNativeArch, "%d; v1 knows 1 (BertForSequenceClassification)", a)
	}
	cfg := Config{
		VocabSize:        int(le.Uint32(pre[offVocab:])),
		HiddenSize:       int(le.Uint32(pre[offHidden:])),
		NumLayers:        int(le.Uint32(pre[offLayers:])),
		NumHeads:         int(le.Uint32(pre[offHeads:])),
		IntermediateSize: int(le.Uint32(pre[offInter:])),
		MaxPosition:      int(le.Uint32(pre[offMaxPos:])),
		TypeVocabSize:    int(le.Uint32(pre[offTypeVocab:])),
		PadTokenID:       int(le.Uint32(pre[offPadID:])),
		LayerNormEps:     math.Float64frombits(le.Uint64(pre[offEps:])),
	}
	if field, detail := cfg.check(); field != "" {
		return nil, fail(field, "", ErrNativeConfig, "%s", detail)
	}
	dataStart, _ := alignUp(hsize)
	tokOff, tokSize := le.Uint64(pre[offTokOffset:]), le.Uint64(pre[offTokSize:])
	if tokOff != dataStart {
		return nil, fail("tokenizer_offset", "", ErrNativeTokenizer, "%d, want %d (the first slot after the header)", tokOff, dataStart)
	}
	if tokSize < 1 || tokSize > MaxTokenizerSize {
		return nil, fail("tokenizer_size", "", ErrNativeTokenizer, "%d, want 1 .. 64 MiB", tokSize)
	}
	tokEnd, _ := alignUp(tokOff + tokSize) // no overflow: both bounded above
	if tokEnd > fileSize {
		return nil, fail("tokenizer_size", "", ErrNativeTokenizer, "slot [%d, %d) past the end of the file (%d bytes)", tokOff, tokEnd, fileSize)
	}
	if ntensors != uint64(cfg.NumTensors()) {
		return nil, fail("n_tensors", "", ErrNativeTensorCount, "%d, want %d for %d layers", ntensors, cfg.NumTensors(), cfg.NumLayers)
	}
	specs := cfg.Tensors()
	tensors := make([]NativeTensor, len(specs))
	prevEnd := tokEnd
	for k, s := range specs {
		e := header[preambleSize+tableEntrySize*k:][:tableEntrySize]
		var want [tensorNameSize]byte
		copy(want[:], s.Name)
		if !bytes.Equal(e[teName:teName+tensorNameSize], want[:]) {
			return nil, fail("", s.Name, ErrNativeTensorName, "index %d holds %q", k, cString(e[teName:teName+tensorNameSize]))
		}
		if nd := le.Uint32(e[teNDim:]); nd != uint32(len(s.Shape)) {
			return nil, fail("", s.Name, ErrNativeTensorNDim, "%d, want %d", nd, len(s.Shape))
		}
		got := [2]uint64{le.Uint64(e[teShape:]), le.Uint64(e[teShape+8:])}
		var wantShape [2]uint64
		for d, v := range s.Shape {
			wantShape[d] = uint64(v)
		}
		if got != wantShape {
			return nil, fail("", s.Name, ErrNativeTensorShape, "stored {%d, %d}, want %v from the config", got[0], got[1], s.Shape)
		}
		off, sz := le.Uint64(e[teOffset:]), le.Uint64(e[teSize:])
		if off%NativeAlignment != 0 || off != prevEnd {
			return nil, fail("", s.Name, ErrNativeTensorOffset, "offset %d, want %d", off, prevEnd)
		}
		hi, wantSize := bits.Mul64(uint64(s.Elems()), uint64(dt.Size()))
		if hi != 0 || sz != wantSize {
			return nil, fail("", s.Name, ErrNativeTensorSize, "size %d, want %d (%v of %v)", sz, wantSize, s.Shape, dt)
		}
		end, ok := alignUp(off + sz)
		if !ok || off+sz < off || end > fileSize {
			return nil, fail("", s.Name, ErrNativeTensorBounds, "slot [%d, %d) past the end of the file (%d bytes)", off, end, fileSize)
		}
		tensors[k] = NativeTensor{Name: s.Name, Shape: slices.Clone(s.Shape), Offset: int64(off), Size: int64(sz), CRC32C: le.Uint32(e[teCRC:])}
		prevEnd = end
	}
	if prevEnd != fileSize {
		return nil, fail("file_size", "", ErrNativeSlotsEnd, "%d, the last slot ends at %d", fileSize, prevEnd)
	}
	nameField := pre[offName : offName+nameFieldSize]
	name := cString(nameField)
	if !utf8.ValidString(name) || !allZero(nameField[len(name):]) {
		return nil, fail("name", "", ErrNativeName, "%q", nameField)
	}
	if !allZero(pre[offReserved76:offReserved76+4]) || !allZero(pre[offReserved248:preambleSize]) {
		return nil, fail("reserved", "", ErrNativeReserved, "preamble")
	}
	for k, s := range specs {
		e := header[preambleSize+tableEntrySize*k:][:tableEntrySize]
		if !allZero(e[teReserved:teReserved+4]) || !allZero(e[teReserved2:tableEntrySize]) {
			return nil, fail("reserved", s.Name, ErrNativeReserved, "tensor table entry %d", k)
		}
	}
	// Every size is now bounded by the real file size: read and verify.
	pad, err := b.Bytes(int64(hsize), int64(dataStart-hsize))
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	if !allZero(pad) {
		return nil, fail("header_size", "", ErrNativePadding, "bytes between the header and the first slot")
	}
	tokSlot, err := b.Bytes(int64(tokOff), int64(tokEnd-tokOff))
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	tok := bytes.Clone(tokSlot[:tokSize])
	var tokSum [32]byte
	copy(tokSum[:], pre[offTokSHA:offTokSHA+32])
	if sha256.Sum256(tok) != tokSum {
		return nil, fail("tokenizer_sha256", "", ErrNativeTokenizerSum, "")
	}
	if !allZero(tokSlot[tokSize:]) {
		return nil, fail("tokenizer_size", "", ErrNativePadding, "tokenizer slot")
	}
	for _, t := range tensors {
		end, _ := alignUp(uint64(t.Offset + t.Size))
		slot, err := b.Bytes(t.Offset, int64(end)-t.Offset)
		if err != nil {
			return nil, fmt.Errorf("weights: %s: tensor %q: %w", path, t.Name, err)
		}
		if c := crc32c(slot[:t.Size]); c != t.CRC32C {
			return nil, fail("", t.Name, ErrNativeTensorCRC, "stored %08x, computed %08x", t.CRC32C, c)
		}
		if !allZero(slot[t.Size:]) {
			return nil, fail("", t.Name, ErrNativePadding, "")
		}
	}
	n := &Native{path: path, b: b, size: size, cfg: cfg, dtype: dt, name: name, tok: tok, tokSum: tokSum,
		tensors: tensors, byName: make(map[string]int, len(tensors))}
	copy(n.srcSum[:], pre[offSourceSHA:offSourceSHA+32])
	for k, t := range tensors {
		n.byName[t.Name] = k
	}
	return n, nil
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Path returns the file's path.
func (n *Native) Path() string { return n.path }

// Size returns the file size in bytes.
func (n *Native) Size() int64 { return n.size }

// Config returns the model config.
func (n *Native) Config() Config { return n.cfg }

// DType returns the dtype of every tensor.
func (n *Native) DType() DType { return n.dtype }

// Name returns the model name ("" when the converter was given none).
func (n *Native) Name() string { return n.name }

// Tokenizer returns the embedded tokenizer.json, verified against its
// SHA-256. It is a copy owned by n, valid after Close; do not modify it.
func (n *Native) Tokenizer() []byte { return n.tok }

// TokenizerSHA256 returns the SHA-256 of the tokenizer bytes.
func (n *Native) TokenizerSHA256() [32]byte { return n.tokSum }

// SourceSHA256 returns the SHA-256 of the source model.safetensors (zeros if
// unknown).
func (n *Native) SourceSHA256() [32]byte { return n.srcSum }

// Tensors returns the tensor table in file order.
func (n *Native) Tensors() []NativeTensor {
	out := slices.Clone(n.tensors)
	for k := range out {
		out[k].Shape = slices.Clone(out[k].Shape)
	}
	return out
}

// Tensor returns the bytes (little-endian, n.DType()), dtype and shape of the
// named tensor. The bytes alias the file mapping where there is one: do not
// modify them or use them after Close.
func (n *Native) Tensor(name string) ([]byte, DType, []int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, 0, nil, &Error{File: n.path, Tensor: name, Rule: ErrClosed}
	}
	k, ok := n.byName[name]
	if !ok {
		return nil, 0, nil, &Error{File: n.path, Tensor: name, Rule: ErrSTTensorNotFound}
	}
	t := n.tensors[k]
	data, err := n.b.Bytes(t.Offset, t.Size)
	if err != nil {
		return nil, 0, nil, &Error{File: n.path, Tensor: name, Rule: ErrNativeTensorBounds, Detail: err.Error()}
	}
	return data, n.dtype, slices.Clone(t.Shape), nil
}

// Float32 returns the named tensor as float32 in a new slice (F16 is
// widened exactly). Cost: one copy of the tensor.
func (n *Native) Float32(name string) ([]float32, error) {
	data, dt, _, err := n.Tensor(name)
	if err != nil {
		return nil, err
	}
	return decodeFloat32(data, dt), nil
}

// Close unmaps and closes the file. It is idempotent; other methods return
// ErrClosed afterwards.
func (n *Native) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	return n.b.Close()
}
