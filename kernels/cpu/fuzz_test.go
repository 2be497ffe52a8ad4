package cpu_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/native"
)

// FuzzModelInit feeds arbitrary bytes to the C reader: it must return an
// error or a model, never crash or hang. The seed is a valid 1-layer file.
func FuzzModelInit(f *testing.F) {
	cfg := cputest.Config{Vocab: 3, Hidden: 2, Layers: 1, Heads: 1, Inter: 1, MaxPos: 3, TypeVocab: 2, Eps: 1e-12, Name: "fuzz"}
	good := cputest.RandomModel(cfg, 1).Encode()
	f.Add(good)
	f.Add(good[:300])
	f.Add([]byte("GOMPSWTS"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.gomps")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := openModel(path, native.PrecisionF32, 1, 3)
		if err != nil {
			if m != nil {
				t.Fatal("model and error both set")
			}
			if statusOf(err) != native.CodeFormat && statusOf(err) != native.CodeIO {
				t.Fatalf("status %d for a bad file: %v", statusOf(err), err)
			}
			return
		}
		m.Close()
	})
}
