package weights

import "os"

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
