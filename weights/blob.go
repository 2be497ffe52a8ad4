package weights

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// blob is read-only random access to the bytes of one file. The mmap
// implementation hands out views of the mapping; the ReaderAt one copies.
// Callers bound every (off, n) by Size before asking, so no allocation is ever
// made from an unchecked size.
type blob interface {
	Size() int64
	// Bytes returns the n bytes at off. The slice must not be modified; with
	// mmap it aliases the mapping and is valid until Close.
	Bytes(off, n int64) ([]byte, error)
	Close() error
}

// openParsed opens path as a blob and parses it; the blob is closed when
// parsing fails, and belongs to the result otherwise.
func openParsed[T any](path string, parse func(string, blob) (T, error)) (T, error) {
	var zero T
	b, err := openBlob(path)
	if err != nil {
		return zero, fmt.Errorf("weights: %s: %w", path, err)
	}
	v, err := parse(path, b)
	if err != nil {
		b.Close()
		return zero, err
	}
	return v, nil
}

// bytesBlob serves a byte slice (tests, fuzzing, small files).
type bytesBlob []byte

func (b bytesBlob) Size() int64 { return int64(len(b)) }

func (b bytesBlob) Bytes(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > int64(len(b)) || n > int64(len(b))-off {
		return nil, fmt.Errorf("range [%d, +%d) outside %d bytes", off, n, len(b))
	}
	return b[off : off+n : off+n], nil
}

func (bytesBlob) Close() error { return nil }

// fileBlob reads through io.ReaderAt; used where mmap is unavailable.
type fileBlob struct {
	f    *os.File
	size int64
}

func (b *fileBlob) Size() int64 { return b.size }

func (b *fileBlob) Bytes(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > b.size || n > b.size-off {
		return nil, fmt.Errorf("range [%d, +%d) outside %d bytes", off, n, b.size)
	}
	if int64(int(n)) != n {
		return nil, fmt.Errorf("range of %d bytes does not fit in memory", n)
	}
	buf := make([]byte, n)
	if _, err := b.f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	return buf, nil
}

func (b *fileBlob) Close() error { return b.f.Close() }

// openBlob opens path read-only, mapped into memory where the platform
// supports it.
func openBlob(path string) (blob, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file")
	}
	size := st.Size()
	if m, ok := mapFile(f, size); ok {
		f.Close()
		return m, nil
	}
	return &fileBlob{f: f, size: size}, nil
}
