package weights

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// NativeOptions configures WriteNative.
type NativeOptions struct {
	DType DType  // F32 (the default) or F16
	Name  string // model name, at most 80 bytes of UTF-8 without NUL
	// Progress, when set, is called after each tensor is written.
	Progress func(done, total int, tensor string)
}

// WriteNative writes m in the native format v1 (FORMAT.md): the config, the
// tokenizer.json with its SHA-256, the SHA-256 of model.safetensors, and every
// tensor converted to opts.DType with each layer's Q, K and V fused into one
// [3H, H] weight and [3H] bias. Output is a deterministic function of the
// inputs and options. It reads every tensor twice (once to checksum, once to
// write) and holds at most one tensor in memory. A non-finite weight, or one
// that overflows F16, is an error.
func (m *Model) WriteNative(w io.Writer, opts NativeOptions) error {
	if opts.DType != F32 && opts.DType != F16 {
		return fmt.Errorf("weights: dtype %v: format v1 stores F32 or F16", opts.DType)
	}
	if err := checkName(opts.Name); err != nil {
		return err
	}
	if len(m.Tokenizer) == 0 {
		return fmt.Errorf("weights: %s: no tokenizer.json; the native format embeds it (give one with WithTokenizer)", m.Dir)
	}
	if len(m.Tokenizer) > MaxTokenizerSize {
		return fmt.Errorf("weights: tokenizer.json is %d bytes, more than 64 MiB", len(m.Tokenizer))
	}
	srcSum, err := fileSHA256(m.Safetensors)
	if err != nil {
		return err
	}
	specs := m.Config.Tensors()
	sizes := make([]uint64, len(specs))
	crcs := make([]uint32, len(specs))
	for k := range specs {
		b, err := m.encodeTensor(k, opts.DType)
		if err != nil {
			return err
		}
		sizes[k], crcs[k] = uint64(len(b)), crc32c(b)
	}
	header, layout := buildNativeHeader(m.Config, opts.DType, opts.Name, m.Tokenizer, srcSum, specs, sizes, crcs)

	bw := bufio.NewWriterSize(w, 1<<20)
	pos := uint64(0)
	write := func(b []byte, slotEnd uint64) error {
		if _, err := bw.Write(b); err != nil {
			return err
		}
		pos += uint64(len(b))
		return writeZeros(bw, &pos, slotEnd)
	}
	if err := write(header, layout.tokOffset); err != nil {
		return err
	}
	if err := write(m.Tokenizer, layout.offsets[0]); err != nil {
		return err
	}
	for k, s := range specs {
		b, err := m.encodeTensor(k, opts.DType)
		if err != nil {
			return err
		}
		if uint64(len(b)) != sizes[k] || crc32c(b) != crcs[k] {
			return fmt.Errorf("weights: tensor %q: source changed while converting", s.Name)
		}
		end, _ := alignUp(layout.offsets[k] + sizes[k])
		if err := write(b, end); err != nil {
			return err
		}
		if opts.Progress != nil {
			opts.Progress(k+1, len(specs), s.Name)
		}
	}
	return bw.Flush()
}

func writeZeros(w io.Writer, pos *uint64, end uint64) error {
	var zeros [4096]byte
	for *pos < end {
		n := min(end-*pos, uint64(len(zeros)))
		if _, err := w.Write(zeros[:n]); err != nil {
			return err
		}
		*pos += n
	}
	return nil
}

// checkName enforces the name field's rule: UTF-8, no NUL, at most 80 bytes.
func checkName(name string) error {
	if len(name) > nameFieldSize || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("weights: model name %q: want at most %d bytes of UTF-8 without NUL", name, nameFieldSize)
	}
	return nil
}

// encodeTensor returns native tensor k: its source parts concatenated by rows
// and converted to dt.
func (m *Model) encodeTensor(k int, dt DType) ([]byte, error) {
	var out []byte
	for _, p := range m.sources[k] {
		f, err := p.file.Float32(p.name)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]byte, 0, len(f)*len(m.sources[k])*dt.Size())
		}
		for i, v := range f {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, &Error{File: p.file.Path(), Tensor: p.name, Rule: ErrBadValue, Detail: fmt.Sprintf("element %d is %v", i, v)}
			}
			switch dt {
			case F32:
				out = le.AppendUint32(out, math.Float32bits(v))
			case F16:
				h, ok := f32ToF16(v)
				if !ok {
					return nil, &Error{File: p.file.Path(), Tensor: p.name, Rule: ErrBadValue,
						Detail: fmt.Sprintf("element %d = %v overflows F16", i, v)}
				}
				out = le.AppendUint16(out, h)
			}
		}
	}
	return out, nil
}

// nativeLayout is where the slots of a native file start.
type nativeLayout struct {
	tokOffset uint64
	offsets   []uint64 // per tensor
	fileSize  uint64
}

// buildNativeHeader lays out a native file and returns its header bytes,
// checksum included.
func buildNativeHeader(c Config, dt DType, name string, tok []byte, srcSum [32]byte,
	specs []TensorSpec, sizes []uint64, crcs []uint32) ([]byte, nativeLayout) {
	hsize := preambleSize + tableEntrySize*len(specs)
	var lay nativeLayout
	lay.tokOffset, _ = alignUp(uint64(hsize))
	pos, _ := alignUp(lay.tokOffset + uint64(len(tok)))
	lay.offsets = make([]uint64, len(specs))
	for k := range specs {
		lay.offsets[k] = pos
		pos, _ = alignUp(pos + sizes[k])
	}
	lay.fileSize = pos

	h := make([]byte, hsize)
	copy(h[offMagic:], NativeMagic)
	le.PutUint32(h[offVersion:], NativeVersion)
	le.PutUint32(h[offHeaderSize:], uint32(hsize))
	le.PutUint32(h[offAlignment:], NativeAlignment)
	le.PutUint64(h[offFileSize:], lay.fileSize)
	le.PutUint32(h[offDType:], uint32(dt))
	le.PutUint32(h[offNTensors:], uint32(len(specs)))
	le.PutUint32(h[offArch:], nativeArchBert)
	le.PutUint32(h[offVocab:], uint32(c.VocabSize))
	le.PutUint32(h[offHidden:], uint32(c.HiddenSize))
	le.PutUint32(h[offLayers:], uint32(c.NumLayers))
	le.PutUint32(h[offHeads:], uint32(c.NumHeads))
	le.PutUint32(h[offInter:], uint32(c.IntermediateSize))
	le.PutUint32(h[offMaxPos:], uint32(c.MaxPosition))
	le.PutUint32(h[offTypeVocab:], uint32(c.TypeVocabSize))
	le.PutUint32(h[offPadID:], uint32(c.PadTokenID))
	le.PutUint64(h[offEps:], math.Float64bits(c.LayerNormEps))
	le.PutUint64(h[offTokOffset:], lay.tokOffset)
	le.PutUint64(h[offTokSize:], uint64(len(tok)))
	tokSum := sha256.Sum256(tok)
	copy(h[offTokSHA:], tokSum[:])
	copy(h[offSourceSHA:], srcSum[:])
	copy(h[offName:offName+nameFieldSize], name)
	for k, s := range specs {
		e := h[preambleSize+tableEntrySize*k:][:tableEntrySize]
		copy(e[teName:teName+tensorNameSize], s.Name)
		le.PutUint32(e[teNDim:], uint32(len(s.Shape)))
		for d, v := range s.Shape {
			le.PutUint64(e[teShape+8*d:], uint64(v))
		}
		le.PutUint64(e[teOffset:], lay.offsets[k])
		le.PutUint64(e[teSize:], sizes[k])
		le.PutUint32(e[teCRC:], crcs[k])
	}
	le.PutUint32(h[offHeaderCRC:], headerCRC(h))
	return h, lay
}

func fileSHA256(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	hs := sha256.New()
	if _, err := io.Copy(hs, f); err != nil {
		return sum, fmt.Errorf("weights: %s: %w", path, err)
	}
	copy(sum[:], hs.Sum(nil))
	return sum, nil
}

// ConvertOptions configures Convert.
type ConvertOptions struct {
	DType     DType  // F32 (the default) or F16
	Name      string // model name; default: the model id, else the directory's name
	Head      string // head safetensors file (WithHead), "" for none
	Tokenizer string // tokenizer.json path (WithTokenizer), "" for the directory's
	// Progress, when set, is called after each tensor is written.
	Progress func(done, total int, tensor string)
}

// ConvertResult describes a converted file.
type ConvertResult struct {
	Input     string // the model directory read
	Output    string
	Name      string
	DType     DType
	Config    Config
	Tensors   int
	FileSize  int64
	SourceSum string // hex SHA-256 of model.safetensors
}

// ResolveModelDir turns src into a model directory: an existing directory is
// used as is; otherwise src must be a model id found in the local Hugging Face
// cache (ResolveHFCache). It also returns the model id when known.
func ResolveModelDir(src string) (dir, modelID string, err error) {
	if st, err := os.Stat(src); err == nil {
		if !st.IsDir() {
			return "", "", fmt.Errorf("weights: %s: not a directory (want a Hugging Face model directory or model id)", src)
		}
		return src, modelIDFromSnapshot(src), nil
	}
	if checkModelID(src) != nil {
		return "", "", fmt.Errorf("weights: %s: no such directory, and not a model id", src)
	}
	dir, err = ResolveHFCache(src)
	if err != nil {
		return "", "", fmt.Errorf("%w; nor is %s a directory", err, src)
	}
	return dir, src, nil
}

// Convert converts the Hugging Face model at src (a directory or a model id
// in the local cache) to the native file dst. It writes a temporary file next
// to dst, validates it with OpenNative, and renames it into place, so dst is
// never left half-written.
func Convert(src, dst string, opts ConvertOptions) (*ConvertResult, error) {
	dir, id, err := ResolveModelDir(src)
	if err != nil {
		return nil, err
	}
	var lo []LoadOption
	if opts.Head != "" {
		lo = append(lo, WithHead(opts.Head))
	}
	if opts.Tokenizer != "" {
		lo = append(lo, WithTokenizer(opts.Tokenizer))
	}
	m, err := LoadHFDir(dir, lo...)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	name := opts.Name
	if name == "" {
		name = id
	}
	if name == "" {
		abs, _ := filepath.Abs(dir)
		name = filepath.Base(abs)
		if len(name) > nameFieldSize {
			name = name[:nameFieldSize]
		}
		name = strings.ToValidUTF8(name, "")
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := m.WriteNative(tmp, NativeOptions{DType: opts.DType, Name: name, Progress: opts.Progress}); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("weights: %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("weights: %s: %w", tmp.Name(), err)
	}
	n, err := OpenNative(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("weights: converter wrote an invalid file: %w", err)
	}
	res := &ConvertResult{Input: dir, Output: dst, Name: n.Name(), DType: n.DType(), Config: n.Config(),
		Tensors: len(n.Tensors()), FileSize: n.Size(), SourceSum: fmt.Sprintf("%x", n.SourceSHA256())}
	if err := n.Close(); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	done = true
	return res, nil
}
