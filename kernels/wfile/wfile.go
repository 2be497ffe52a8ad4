//go:build cgo

package wfile

/*
#cgo CFLAGS: -O2 -std=c11 -Wall -Wextra
#include <stdlib.h>
#include "gomps-wfile.h"
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// Status codes of the reader (the native ABI's).
const (
	StatusOK         = int(C.GOMPS_OK)
	StatusInvalidArg = int(C.GOMPS_ERR_INVALID_ARG)
	StatusOOM        = int(C.GOMPS_ERR_OOM)
	StatusIO         = int(C.GOMPS_ERR_IO)
	StatusFormat     = int(C.GOMPS_ERR_FORMAT)
)

// Error is a failed open: the status code and the reader's message, which
// names the file, the field or tensor, and the rule.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (status %d)", e.Msg, e.Code) }

// Info is what the C reader found in a valid file.
type Info struct {
	DType                      uint32 // 0 = F32, 1 = F16
	VocabSize, HiddenSize      int
	NumLayers, NumHeads        int
	IntermediateSize           int
	MaxPosition, TypeVocabSize int
	PadTokenID                 int
	LayerNormEps               float64
	Name                       string
	TokenizerOffset, Tokenizer int64 // offset and size of tokenizer.json
	Tensors                    []Tensor
	// every data pointer page-aligned (16 KiB on Apple silicon, so Metal can
	// wrap it without a copy) and == base + offset
	TensorsAligned, DataInPlace bool
}

// Tensor is one entry of the C reader's table.
type Tensor struct {
	Name                      string
	NDim                      int
	Shape                     [2]uint64
	Elems, Offset, Size, Slot uint64
}

// Check opens path with the C reader (gomps_wfile_open), copies out what it
// found and closes it. verifyTokenizer sets GOMPS_WFILE_VERIFY_TOKENIZER.
func Check(path string, verifyTokenizer bool) (Info, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var flags C.uint32_t
	if verifyTokenizer {
		flags = C.GOMPS_WFILE_VERIFY_TOKENIZER
	}
	var f C.gomps_wfile
	var errbuf [1024]C.char
	if st := C.gomps_wfile_open(cpath, flags, &f, &errbuf[0], C.size_t(len(errbuf))); st != C.GOMPS_OK {
		return Info{}, &Error{Code: int(st), Msg: C.GoString(&errbuf[0])}
	}
	defer C.gomps_wfile_close(&f)
	c := &f.cfg
	info := Info{
		DType:            uint32(c.dtype),
		VocabSize:        int(c.vocab_size),
		HiddenSize:       int(c.hidden_size),
		NumLayers:        int(c.num_layers),
		NumHeads:         int(c.num_heads),
		IntermediateSize: int(c.intermediate_size),
		MaxPosition:      int(c.max_position),
		TypeVocabSize:    int(c.type_vocab_size),
		PadTokenID:       int(c.pad_token_id),
		LayerNormEps:     float64(c.layer_norm_eps),
		Name:             C.GoString(&c.name[0]),
		TokenizerOffset:  int64(uintptr(f.tokenizer) - uintptr(f.base)),
		Tokenizer:        int64(f.tokenizer_size),
		TensorsAligned:   true,
		DataInPlace:      true,
	}
	ts := unsafe.Slice(f.tensors, int(f.n_tensors))
	for i := range ts {
		t := &ts[i]
		info.Tensors = append(info.Tensors, Tensor{
			Name:   C.GoString(&t.name[0]),
			NDim:   int(t.ndim),
			Shape:  [2]uint64{uint64(t.shape[0]), uint64(t.shape[1])},
			Elems:  uint64(t.elems),
			Offset: uint64(t.offset),
			Size:   uint64(t.size),
			Slot:   uint64(t.slot),
		})
		p := uintptr(t.data)
		info.TensorsAligned = info.TensorsAligned && p%uintptr(os.Getpagesize()) == 0
		info.DataInPlace = info.DataInPlace && p == uintptr(f.base)+uintptr(t.offset)
	}
	return info, nil
}

// CRC32C is the reader's CRC-32C of data, continuing from crc (0 to start):
// the hardware path where the CPU has one, or with portable the table path.
func CRC32C(crc uint32, data []byte, portable bool) uint32 {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	if portable {
		return uint32(C.gomps_wfile_crc32c_portable(C.uint32_t(crc), p, C.size_t(len(data))))
	}
	return uint32(C.gomps_wfile_crc32c(C.uint32_t(crc), p, C.size_t(len(data))))
}

// SHA256 is the reader's SHA-256 of data.
func SHA256(data []byte) [32]byte {
	var out [32]byte
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	C.gomps_wfile_sha256(p, C.size_t(len(data)), (*C.uint8_t)(unsafe.Pointer(&out[0])))
	return out
}
