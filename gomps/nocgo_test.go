//go:build !cgo

package gomps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Without cgo, Open fails with ErrNoCgo instead of crashing or linking.
func TestOpenWithoutCgo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gomps")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadModel(p, 0, 1, 8)
	if !errors.Is(err, ErrNoCgo) {
		t.Fatalf("loadModel: %v, want ErrNoCgo", err)
	}
	if _, err := newTokenizer([]byte("{}")); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("newTokenizer: %v, want ErrNoCgo", err)
	}
	_, err = Open(context.Background(), filepath.Join("testdata", "tiny"))
	if !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Open: %v, want ErrNoCgo", err)
	}
}
