package weights_test

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
)

// TestNativeReaderAtFallback reads through io.ReaderAt (non-mmap platforms)
// and must agree with the mapped reader.
func TestNativeReaderAtFallback(t *testing.T) {
	t.Parallel()
	dir, _ := synthDir(t, tinyOpts(61))
	path := convert(t, dir, weights.NativeOptions{DType: weights.F16, Name: "fallback"})
	a, err := weights.OpenNative(path)
	require.NoError(t, err)
	defer a.Close()
	b, err := weights.ParseNativeFileReaderAt(path)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, a.Config(), b.Config())
	assert.Equal(t, a.Tokenizer(), b.Tokenizer())
	for _, tt := range a.Tensors() {
		va, err := a.Float32(tt.Name)
		require.NoError(t, err)
		vb, err := b.Float32(tt.Name)
		require.NoError(t, err)
		require.Equal(t, va, vb, tt.Name)
	}
	bad, err := os.ReadFile(path)
	require.NoError(t, err)
	bad[len(bad)-slotSize] ^= 1 // first byte of the last tensor
	badPath := filepath.Join(t.TempDir(), "bad.gomps")
	require.NoError(t, os.WriteFile(badPath, bad, 0o644))
	_, err = weights.ParseNativeFileReaderAt(badPath)
	assert.ErrorIs(t, err, weights.ErrNativeTensorCRC)
	assert.ErrorContains(t, err, "classifier.bias")
}

// TestNativeConcurrentReads reads every tensor from many goroutines (run
// with -race).
func TestNativeConcurrentReads(t *testing.T) {
	t.Parallel()
	dir, _ := synthDir(t, tinyOpts(62))
	n, err := weights.OpenNative(convert(t, dir, weights.NativeOptions{}))
	require.NoError(t, err)
	defer n.Close()
	want, err := n.Float32("layer.1.qkv.weight")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for _, tt := range n.Tensors() {
				if _, err := n.Float32(tt.Name); err != nil {
					errs <- err
					return
				}
			}
			got, err := n.Float32("layer.1.qkv.weight")
			if err == nil && !assert.ObjectsAreEqual(want, got) {
				err = assert.AnError
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestOpenCloseLeaks opens and closes both readers in a loop and checks no
// descriptor or mapping is left behind. Not parallel: it counts descriptors.
func TestOpenCloseLeaks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	dir, _ := synthDir(t, tinyOpts(63))
	native := convert(t, dir, weights.NativeOptions{})
	st := filepath.Join(dir, "model.safetensors")
	before := openFDs(t)
	for range 100 {
		n, err := weights.OpenNative(native)
		require.NoError(t, err)
		require.NoError(t, n.Close())
		s, err := weights.OpenSafetensors(st)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		m, err := weights.LoadHFDir(dir)
		require.NoError(t, err)
		require.NoError(t, m.Close())
	}
	// Failed opens release what they took, too.
	bad := filepath.Join(t.TempDir(), "bad.gomps")
	require.NoError(t, os.WriteFile(bad, make([]byte, 300), 0o644))
	for range 50 {
		_, err := weights.OpenNative(bad)
		require.Error(t, err)
	}
	assert.Equal(t, before, openFDs(t), "open descriptors")
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	assert.NotContains(t, string(maps), native, "no mapping of the native file remains")
}
