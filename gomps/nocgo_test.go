//go:build !cgo

package gomps

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// Without cgo, Open fails with ErrNoCgo instead of crashing or linking.
func TestOpenWithoutCgo(t *testing.T) {
	_, err := Backend()
	if !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Backend: %v, want ErrNoCgo", err)
	}
	if _, err := newTokenizer([]byte("{}")); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("newTokenizer: %v, want ErrNoCgo", err)
	}
	_, err = Open(context.Background(), filepath.Join("testdata", "tiny"))
	if !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Open: %v, want ErrNoCgo", err)
	}
}
