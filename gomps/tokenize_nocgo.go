//go:build !cgo

package gomps

// Without cgo the Rust tokenizer cannot be linked either.

type tokenizer struct{ cls, sep int32 }

func newTokenizer([]byte) (*tokenizer, error) { return nil, ErrNoCgo }

func (*tokenizer) encode(string) ([]int32, error) { return nil, ErrNoCgo }

func (*tokenizer) Close() error { return nil }
