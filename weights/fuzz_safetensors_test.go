package weights

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzSafetensors: any input either parses into a self-consistent file or
// fails with an *Error; it never panics or allocates from an unchecked size.
// Seeds: the real header of all-MiniLM-L6-v2 (without its data: a truncated
// file), a small valid file and each rule's negative case.
func FuzzSafetensors(f *testing.F) {
	real, err := os.ReadFile(filepath.Join("testdata", "all-minilm-l6-v2.header.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add(stFile(string(real[8:]), make([]byte, 64))) // real header, short data
	f.Add(stFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2,1],"data_offsets":[0,4]},"b":{"dtype":"I64","shape":[1],"data_offsets":[4,12]}}`, make([]byte, 12)))
	f.Add(stFile(everyDTypeHeader(), make([]byte, everyDTypeBytes())))
	for _, c := range stRuleCases() {
		f.Add(c.file)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSafetensors("fuzz", bytesBlob(data))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error is %T, want *Error: %v", err, err)
			}
			return
		}
		var total int64
		for _, tt := range s.Tensors() {
			b, info, err := s.Bytes(tt.Name)
			if err != nil {
				t.Fatalf("tensor %q listed but unreadable: %v", tt.Name, err)
			}
			if int64(len(b)) != info.End-info.Begin {
				t.Fatalf("tensor %q: %d bytes for offsets [%d, %d]", tt.Name, len(b), info.Begin, info.End)
			}
			if f, err := s.Float32(tt.Name); err == nil {
				if want := int64(len(b)) * 8 / int64(dtypeBits[info.DType]); int64(len(f)) != want {
					t.Fatalf("tensor %q: %d floats, want %d", tt.Name, len(f), want)
				}
			}
			total += int64(len(b))
		}
		if total != int64(len(data))-s.dataStart {
			t.Fatalf("tensors cover %d bytes of a %d-byte data section", total, int64(len(data))-s.dataStart)
		}
	})
}
