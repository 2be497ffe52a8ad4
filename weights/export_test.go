package weights

import (
	"errors"
	"os"
)

// Hooks for the external tests (package weights_test).

// ParseNativeBytes validates an in-memory native file.
func ParseNativeBytes(name string, b []byte) (*Native, error) { return parseNative(name, bytesBlob(b)) }

// DecodeFloat32 widens F32, F16 or BF16 bytes.
var DecodeFloat32 = decodeFloat32

// HeaderCRC computes the native header checksum.
var HeaderCRC = headerCRC

// CRC32C is the Castagnoli CRC.
var CRC32C = crc32c

// ParseNativeFileReaderAt validates a native file through the io.ReaderAt
// fallback used where mmap is unavailable.
func ParseNativeFileReaderAt(path string) (*Native, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	n, err := parseNative(path, &fileBlob{f: f, size: st.Size()})
	if err != nil {
		f.Close()
	}
	return n, err
}

// errPastHeader is what headerOnlyBlob returns for a read past the header.
var errPastHeader = errors.New("read past the header")

// headerOnlyBlob serves b but refuses any read that ends past limit.
type headerOnlyBlob struct {
	bytesBlob
	limit int64
}

func (h headerOnlyBlob) Bytes(off, n int64) ([]byte, error) {
	if off+n > h.limit {
		return nil, errPastHeader
	}
	return h.bytesBlob.Bytes(off, n)
}

// ParseNativeHeader runs the steps of parseNative before verifyData over b,
// refusing every read past the header that b's preamble declares, and
// returns the tensor table and the name they decoded.
func ParseNativeHeader(name string, b []byte) ([]NativeTensor, string, error) {
	limit := int64(len(b))
	if len(b) >= preambleSize {
		limit = min(limit, max(preambleSize, int64(le.Uint32(b[offHeaderSize:]))))
	}
	p := nativeParser{path: name, b: headerOnlyBlob{bytesBlob(b), limit}}
	for _, step := range []func() error{p.readHeader, p.parsePreamble, p.parseTable, p.checkReserved} {
		if err := step(); err != nil {
			return nil, "", err
		}
	}
	return p.tensors, p.name, nil
}
