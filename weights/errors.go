package weights

import (
	"errors"
	"strings"
)

// Error is the error of every reader and loader in this package. It names the
// file, the tensor or field (when there is one) and the rule broken; Rule is
// one of the Err* sentinels below, so callers test with errors.Is.
type Error struct {
	File   string // path of the file
	Tensor string // tensor name, "" when the rule is not about one tensor
	Field  string // header or config field, "" when none
	Rule   error  // an Err* sentinel
	Detail string // what was found
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("weights: ")
	b.WriteString(e.File)
	if e.Tensor != "" {
		b.WriteString(": tensor \"")
		b.WriteString(e.Tensor)
		b.WriteString("\"")
	}
	if e.Field != "" {
		b.WriteString(": field ")
		b.WriteString(e.Field)
	}
	if e.Rule != nil {
		b.WriteString(": ")
		b.WriteString(e.Rule.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the rule, for errors.Is.
func (e *Error) Unwrap() error { return e.Rule }

// Rules of the safetensors format (https://github.com/huggingface/safetensors),
// as its reference implementation validates them.
var (
	ErrSTTooSmall        = errors.New("file shorter than the 8-byte header length")
	ErrSTHeaderTooLarge  = errors.New("header larger than 100 MB")
	ErrSTHeaderLength    = errors.New("header length past the end of the file")
	ErrSTHeaderUTF8      = errors.New("header is not valid UTF-8")
	ErrSTHeaderJSON      = errors.New("header is not a JSON object")
	ErrSTDuplicateKey    = errors.New("duplicate key in header")
	ErrSTMetadata        = errors.New("__metadata__ is not a map of strings to strings")
	ErrSTTensorInfo      = errors.New("tensor entry is not {dtype, shape, data_offsets}")
	ErrSTUnknownDType    = errors.New("unknown dtype")
	ErrSTSizeOverflow    = errors.New("shape size overflows")
	ErrSTShapeMismatch   = errors.New("shape and dtype do not match the data_offsets")
	ErrSTOffsetBounds    = errors.New("data_offsets outside the data section")
	ErrSTNotContiguous   = errors.New("tensors are not contiguous (gap or overlap)")
	ErrSTIncompleteData  = errors.New("tensors do not cover the data section exactly")
	ErrSTTensorNotFound  = errors.New("no such tensor")
	ErrSTUnsupportedType = errors.New("dtype not usable as weights (want F32, F16 or BF16)")
)

// Rules of the native format, weights/FORMAT.md.
var (
	ErrNativeTooSmall     = errors.New("file shorter than the 256-byte preamble")
	ErrNativeMagic        = errors.New("bad magic (not a gomps weights file)")
	ErrNativeVersion      = errors.New("unsupported format version")
	ErrNativeHeaderSize   = errors.New("bad header_size")
	ErrNativeHeaderCRC    = errors.New("header CRC-32C mismatch")
	ErrNativeAlignment    = errors.New("alignment is not 16384")
	ErrNativeFileSize     = errors.New("file_size does not match the file")
	ErrNativeDType        = errors.New("unsupported dtype")
	ErrNativeArch         = errors.New("unsupported arch")
	ErrNativeConfig       = errors.New("config field out of range")
	ErrNativeName         = errors.New("model name is not NUL-padded UTF-8")
	ErrNativeTokenizer    = errors.New("bad tokenizer slot")
	ErrNativeTensorCount  = errors.New("n_tensors is not 12 * num_layers + 9")
	ErrNativeTensorName   = errors.New("unexpected tensor name at this index")
	ErrNativeTensorNDim   = errors.New("unexpected ndim")
	ErrNativeTensorShape  = errors.New("shape does not match the config")
	ErrNativeTensorOffset = errors.New("offset not aligned or not contiguous with the previous slot")
	ErrNativeTensorSize   = errors.New("size is not product(shape) * element size")
	ErrNativeTensorBounds = errors.New("slot past the end of the file")
	ErrNativeSlotsEnd     = errors.New("file_size is not the end of the last slot")
	ErrNativeReserved     = errors.New("reserved field is not zero")
	ErrNativePadding      = errors.New("slot padding is not zero")
	ErrNativeTokenizerSum = errors.New("tokenizer SHA-256 mismatch")
	ErrNativeTensorCRC    = errors.New("tensor CRC-32C mismatch")
)

// Errors of the Hugging Face loader and the cache.
var (
	ErrUnsupportedModel = errors.New("unsupported model")
	ErrMissingTensor    = errors.New("missing tensor")
	ErrUnexpectedTensor = errors.New("unexpected tensor")
	ErrTensorShape      = errors.New("tensor shape does not match config.json")
	ErrNeedHead         = errors.New("no classification head")
	ErrNotInCache       = errors.New("not in the Hugging Face cache")
	ErrBadValue         = errors.New("value not representable")
	ErrClosed           = errors.New("closed")
)
