package weights_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"testing"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// fuzzFixture is a small valid native file: 1 layer, hidden 4.
func fuzzFixture(f *testing.F) []byte {
	f.Helper()
	dir := f.TempDir()
	cfg := weights.Config{VocabSize: 8, HiddenSize: 4, NumLayers: 1, NumHeads: 2, IntermediateSize: 8,
		MaxPosition: 3, TypeVocabSize: 2, LayerNormEps: 1e-12}
	if _, err := weightstest.WriteHFDir(dir, weightstest.Options{Config: cfg, Seed: 7}); err != nil {
		f.Fatal(err)
	}
	m, err := weights.LoadHFDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	var buf bytes.Buffer
	if err := m.WriteNative(&buf, weights.NativeOptions{Name: "fuzz"}); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// fixChecksums makes the checksums of a mutated file consistent again where
// its layout allows, so the fuzzer reaches the rules behind them: the
// tokenizer SHA-256, each tensor CRC whose range is inside the file, then the
// header CRC.
func fixChecksums(b []byte) {
	if len(b) < 256 {
		return
	}
	hs := int(binary.LittleEndian.Uint32(b[12:]))
	if hs < 256 || hs > len(b) {
		return
	}
	in := func(off, size uint64) bool { return off <= uint64(len(b)) && size <= uint64(len(b))-off }
	tokOff, tokSize := binary.LittleEndian.Uint64(b[88:]), binary.LittleEndian.Uint64(b[96:])
	if in(tokOff, tokSize) {
		sum := sha256.Sum256(b[tokOff : tokOff+tokSize])
		copy(b[104:136], sum[:])
	}
	for e := 256; e+128 <= hs; e += 128 {
		off, size := binary.LittleEndian.Uint64(b[e+88:]), binary.LittleEndian.Uint64(b[e+96:])
		if in(off, size) {
			binary.LittleEndian.PutUint32(b[e+104:], weights.CRC32C(b[off:off+size]))
		}
	}
	binary.LittleEndian.PutUint32(b[16:], weights.HeaderCRC(b[:hs]))
}

// FuzzNative: any input is either a fully valid native file whose every
// tensor reads back, or an *Error; never a panic. With fix set, the checksums
// are repaired after mutation so the structural rules get exercised. Seeds: a
// valid file, truncations of it and each rule's negative case.
func FuzzNative(f *testing.F) {
	valid := fuzzFixture(f)
	f.Add(valid, false)
	f.Add(valid, true)
	f.Add(valid[:len(valid)/2], true)
	f.Add(valid[:300], false)
	if real, err := os.ReadFile("testdata/all-minilm-l6-v2.header.safetensors"); err == nil {
		f.Add(real, true) // not a native file at all
	}
	for _, c := range nativeRuleCases(valid) {
		f.Add(c.mutate(bytes.Clone(valid)), !c.keep)
	}
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = bytes.Clone(data)
			fixChecksums(data)
		}
		n, err := weights.ParseNativeBytes("fuzz", data)
		if err != nil {
			if _, ok := err.(*weights.Error); !ok {
				t.Fatalf("error is %T, want *weights.Error: %v", err, err)
			}
			return
		}
		defer n.Close()
		if sha256.Sum256(n.Tokenizer()) != n.TokenizerSHA256() {
			t.Fatal("tokenizer does not match its SHA-256")
		}
		specs := n.Config().Tensors()
		if len(specs) != len(n.Tensors()) {
			t.Fatalf("%d tensors, config wants %d", len(n.Tensors()), len(specs))
		}
		for k, tt := range n.Tensors() {
			v, err := n.Float32(tt.Name)
			if err != nil {
				t.Fatalf("tensor %q listed but unreadable: %v", tt.Name, err)
			}
			if len(v) != specs[k].Elems() {
				t.Fatalf("tensor %q: %d values, want %d", tt.Name, len(v), specs[k].Elems())
			}
		}
	})
}
