//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package weights

import (
	"os"
	"sync"
	"syscall"
)

// mmapBlob is a read-only shared mapping of a whole file. A file truncated by
// another process while mapped faults on access; gomps never writes to a file
// it has open.
type mmapBlob struct {
	mu   sync.Mutex
	data []byte
}

// mapFile maps f; ok is false when mapping is impossible (empty or huge file,
// or the call fails), and the caller falls back to ReadAt.
func mapFile(f *os.File, size int64) (blob, bool) {
	if size <= 0 || int64(int(size)) != size {
		return nil, false
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, false
	}
	return &mmapBlob{data: data}, true
}

func (m *mmapBlob) Size() int64 { return int64(len(m.data)) }

func (m *mmapBlob) Bytes(off, n int64) ([]byte, error) {
	return bytesBlob(m.data).Bytes(off, n)
}

func (m *mmapBlob) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil
	}
	err := syscall.Munmap(m.data)
	m.data = nil
	return err
}
