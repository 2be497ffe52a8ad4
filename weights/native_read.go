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
func OpenNative(path string) (*Native, error) { return openParsed(path, parseNative) }

// parseNative checks every rule of FORMAT.md in its order: the preamble
// and header (readHeader), the preamble's fields (parsePreamble), the
// tokenizer slot and the tensor table (parseTable), the name and reserved
// fields (checkReserved), then the bytes themselves (verifyData).
func parseNative(path string, b blob) (*Native, error) {
	p := nativeParser{path: path, b: b}
	if err := p.readHeader(); err != nil {
		return nil, err
	}
	if err := p.parsePreamble(); err != nil {
		return nil, err
	}
	if err := p.parseTable(); err != nil {
		return nil, err
	}
	if err := p.checkReserved(); err != nil {
		return nil, err
	}
	if err := p.verifyData(); err != nil {
		return nil, err
	}
	n := &Native{path: path, b: b, size: p.size, cfg: p.cfg, dtype: p.dtype, name: p.name, tok: p.tok, tokSum: p.tokSum,
		tensors: p.tensors, byName: make(map[string]int, len(p.tensors))}
	copy(n.srcSum[:], p.pre[offSourceSHA:offSourceSHA+32])
	for k, t := range p.tensors {
		n.byName[t.Name] = k
	}
	return n, nil
}

// nativeParser holds what parseNative's steps have read so far; each step
// fills its fields from the ones before it.
type nativeParser struct {
	path string
	b    blob
	size int64

	// readHeader
	pre, header []byte
	hsize       uint64 // header bytes: preamble + tensor table
	ntensors    uint64

	// parsePreamble
	fileSize  uint64
	dtype     DType
	cfg       Config
	dataStart uint64 // the first slot, after the header
	tokOff    uint64
	tokSize   uint64
	tokEnd    uint64 // the end of the tokenizer slot

	// parseTable
	specs   []TensorSpec
	tensors []NativeTensor

	// checkReserved, verifyData
	name   string
	tok    []byte
	tokSum [32]byte
}

// fail returns an *Error naming the file, the field or tensor and the rule.
func (p *nativeParser) fail(field, tensor string, rule error, format string, args ...any) error {
	return &Error{File: p.path, Field: field, Tensor: tensor, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// readHeader reads the preamble and the whole header (preamble + tensor
// table) and checks magic, version, header_size and header_crc32c.
func (p *nativeParser) readHeader() error {
	p.size = p.b.Size()
	if p.size < preambleSize {
		return p.fail("", "", ErrNativeTooSmall, "%d bytes", p.size)
	}
	pre, err := p.b.Bytes(0, preambleSize)
	if err != nil {
		return fmt.Errorf("weights: %s: %w", p.path, err)
	}
	if string(pre[offMagic:offMagic+8]) != NativeMagic {
		return p.fail("magic", "", ErrNativeMagic, "%q", pre[offMagic:offMagic+8])
	}
	if v := le.Uint32(pre[offVersion:]); v != NativeVersion {
		return p.fail("version", "", ErrNativeVersion, "version %d, this reader knows %d", v, NativeVersion)
	}
	hsize := uint64(le.Uint32(pre[offHeaderSize:]))
	ntensors := uint64(le.Uint32(pre[offNTensors:]))
	if hsize < preambleSize || hsize > maxHeaderSize || hsize > uint64(p.size) || hsize != preambleSize+tableEntrySize*ntensors {
		return p.fail("header_size", "", ErrNativeHeaderSize,
			"%d; want 256 + 128 * n_tensors (%d), at most 1 MiB and the file size %d", hsize, ntensors, p.size)
	}
	header, err := p.b.Bytes(0, int64(hsize))
	if err != nil {
		return fmt.Errorf("weights: %s: %w", p.path, err)
	}
	if got, want := le.Uint32(header[offHeaderCRC:]), headerCRC(header); got != want {
		return p.fail("header_crc32c", "", ErrNativeHeaderCRC, "stored %08x, computed %08x", got, want)
	}
	p.pre, p.header, p.hsize, p.ntensors = pre, header, hsize, ntensors
	return nil
}

// parsePreamble checks alignment, file_size, dtype, arch, the model config
// and the tokenizer slot's place and size.
func (p *nativeParser) parsePreamble() error {
	pre := p.pre
	if a := le.Uint32(pre[offAlignment:]); a != NativeAlignment {
		return p.fail("alignment", "", ErrNativeAlignment, "%d", a)
	}
	p.fileSize = le.Uint64(pre[offFileSize:])
	if p.fileSize != uint64(p.size) {
		return p.fail("file_size", "", ErrNativeFileSize, "header says %d, file has %d bytes", p.fileSize, p.size)
	}
	p.dtype = DType(le.Uint32(pre[offDType:]))
	if p.dtype != F32 && p.dtype != F16 {
		return p.fail("dtype", "", ErrNativeDType, "%d; v1 stores 0 (F32) or 1 (F16)", uint32(p.dtype))
	}
	if a := le.Uint32(pre[offArch:]); a != nativeArchBert {
		return p.fail("arch", "", ErrNativeArch, "%d; v1 knows 1 (BertForSequenceClassification)", a)
	}
	p.cfg = preambleConfig(pre)
	if field, detail := p.cfg.check(); field != "" {
		return p.fail(field, "", ErrNativeConfig, "%s", detail)
	}
	p.dataStart, _ = alignUp(p.hsize)
	p.tokOff, p.tokSize = le.Uint64(pre[offTokOffset:]), le.Uint64(pre[offTokSize:])
	if p.tokOff != p.dataStart {
		return p.fail("tokenizer_offset", "", ErrNativeTokenizer, "%d, want %d (the first slot after the header)", p.tokOff, p.dataStart)
	}
	if p.tokSize < 1 || p.tokSize > MaxTokenizerSize {
		return p.fail("tokenizer_size", "", ErrNativeTokenizer, "%d, want 1 .. 64 MiB", p.tokSize)
	}
	p.tokEnd, _ = alignUp(p.tokOff + p.tokSize) // no overflow: both bounded above
	if p.tokEnd > p.fileSize {
		return p.fail("tokenizer_size", "", ErrNativeTokenizer, "slot [%d, %d) past the end of the file (%d bytes)", p.tokOff, p.tokEnd, p.fileSize)
	}
	return nil
}

// preambleConfig reads the model config fields of a preamble, unchecked.
func preambleConfig(pre []byte) Config {
	return Config{
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
}

// parseTable checks n_tensors against the config and every tensor table
// entry (name, rank, shape, offset, size, bounds) in order; the slots must
// follow one another from the tokenizer slot to the end of the file.
func (p *nativeParser) parseTable() error {
	if p.ntensors != uint64(p.cfg.NumTensors()) {
		return p.fail("n_tensors", "", ErrNativeTensorCount, "%d, want %d for %d layers", p.ntensors, p.cfg.NumTensors(), p.cfg.NumLayers)
	}
	p.specs = p.cfg.Tensors()
	p.tensors = make([]NativeTensor, len(p.specs))
	prevEnd := p.tokEnd
	for k, s := range p.specs {
		t, end, err := p.tableEntry(k, s, prevEnd)
		if err != nil {
			return err
		}
		p.tensors[k] = t
		prevEnd = end
	}
	if prevEnd != p.fileSize {
		return p.fail("file_size", "", ErrNativeSlotsEnd, "%d, the last slot ends at %d", p.fileSize, prevEnd)
	}
	return nil
}

// entry returns tensor table entry k.
func (p *nativeParser) entry(k int) []byte {
	return p.header[preambleSize+tableEntrySize*k:][:tableEntrySize]
}

// tableEntry checks tensor table entry k against its spec s, its slot
// starting at prevEnd, and returns the tensor and the end of its slot.
func (p *nativeParser) tableEntry(k int, s TensorSpec, prevEnd uint64) (NativeTensor, uint64, error) {
	e := p.entry(k)
	var want [tensorNameSize]byte
	copy(want[:], s.Name)
	if !bytes.Equal(e[teName:teName+tensorNameSize], want[:]) {
		return NativeTensor{}, 0, p.fail("", s.Name, ErrNativeTensorName, "index %d holds %q", k, cString(e[teName:teName+tensorNameSize]))
	}
	if nd := le.Uint32(e[teNDim:]); nd != uint32(len(s.Shape)) {
		return NativeTensor{}, 0, p.fail("", s.Name, ErrNativeTensorNDim, "%d, want %d", nd, len(s.Shape))
	}
	got := [2]uint64{le.Uint64(e[teShape:]), le.Uint64(e[teShape+8:])}
	var wantShape [2]uint64
	for d, v := range s.Shape {
		wantShape[d] = uint64(v)
	}
	if got != wantShape {
		return NativeTensor{}, 0, p.fail("", s.Name, ErrNativeTensorShape, "stored {%d, %d}, want %v from the config", got[0], got[1], s.Shape)
	}
	off, sz := le.Uint64(e[teOffset:]), le.Uint64(e[teSize:])
	if off%NativeAlignment != 0 || off != prevEnd {
		return NativeTensor{}, 0, p.fail("", s.Name, ErrNativeTensorOffset, "offset %d, want %d", off, prevEnd)
	}
	hi, wantSize := bits.Mul64(uint64(s.Elems()), uint64(p.dtype.Size()))
	if hi != 0 || sz != wantSize {
		return NativeTensor{}, 0, p.fail("", s.Name, ErrNativeTensorSize, "size %d, want %d (%v of %v)", sz, wantSize, s.Shape, p.dtype)
	}
	end, ok := alignUp(off + sz)
	if !ok || off+sz < off || end > p.fileSize {
		return NativeTensor{}, 0, p.fail("", s.Name, ErrNativeTensorBounds, "slot [%d, %d) past the end of the file (%d bytes)", off, end, p.fileSize)
	}
	t := NativeTensor{Name: s.Name, Shape: slices.Clone(s.Shape), Offset: int64(off), Size: int64(sz), CRC32C: le.Uint32(e[teCRC:])}
	return t, end, nil
}

// checkReserved checks the name field (UTF-8, NUL-padded) and that every
// reserved field of the preamble and the tensor table is zero.
func (p *nativeParser) checkReserved() error {
	pre := p.pre
	nameField := pre[offName : offName+nameFieldSize]
	p.name = cString(nameField)
	if !utf8.ValidString(p.name) || !allZero(nameField[len(p.name):]) {
		return p.fail("name", "", ErrNativeName, "%q", nameField)
	}
	if !allZero(pre[offReserved76:offReserved76+4]) || !allZero(pre[offReserved248:preambleSize]) {
		return p.fail("reserved", "", ErrNativeReserved, "preamble")
	}
	for k, s := range p.specs {
		e := p.entry(k)
		if !allZero(e[teReserved:teReserved+4]) || !allZero(e[teReserved2:tableEntrySize]) {
			return p.fail("reserved", s.Name, ErrNativeReserved, "tensor table entry %d", k)
		}
	}
	return nil
}

// verifyData reads the data: the padding after the header, the tokenizer
// (its SHA-256 and padding) and every tensor (its CRC-32C and padding).
// Every size is bounded by the real file size by now.
func (p *nativeParser) verifyData() error {
	pad, err := p.b.Bytes(int64(p.hsize), int64(p.dataStart-p.hsize))
	if err != nil {
		return fmt.Errorf("weights: %s: %w", p.path, err)
	}
	if !allZero(pad) {
		return p.fail("header_size", "", ErrNativePadding, "bytes between the header and the first slot")
	}
	tokSlot, err := p.b.Bytes(int64(p.tokOff), int64(p.tokEnd-p.tokOff))
	if err != nil {
		return fmt.Errorf("weights: %s: %w", p.path, err)
	}
	p.tok = bytes.Clone(tokSlot[:p.tokSize])
	copy(p.tokSum[:], p.pre[offTokSHA:offTokSHA+32])
	if sha256.Sum256(p.tok) != p.tokSum {
		return p.fail("tokenizer_sha256", "", ErrNativeTokenizerSum, "")
	}
	if !allZero(tokSlot[p.tokSize:]) {
		return p.fail("tokenizer_size", "", ErrNativePadding, "tokenizer slot")
	}
	for _, t := range p.tensors {
		end, _ := alignUp(uint64(t.Offset + t.Size))
		slot, err := p.b.Bytes(t.Offset, int64(end)-t.Offset)
		if err != nil {
			return fmt.Errorf("weights: %s: tensor %q: %w", p.path, t.Name, err)
		}
		if c := crc32c(slot[:t.Size]); c != t.CRC32C {
			return p.fail("", t.Name, ErrNativeTensorCRC, "stored %08x, computed %08x", t.CRC32C, c)
		}
		if !allZero(slot[t.Size:]) {
			return p.fail("", t.Name, ErrNativePadding, "")
		}
	}
	return nil
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
