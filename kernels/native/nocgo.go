//go:build !cgo

package native

import "unsafe"

// ABIVersion is the ABI version this package implements (kernels/gomps.h).
const ABIVersion = 2

// Backend is a native backend; without cgo there is none.
type Backend struct{}

// Model is a loaded model; without cgo there is none.
type Model struct{}

// Context is one instance's scratch; without cgo there is none.
type Context struct{}

// Register fails without cgo.
func Register(unsafe.Pointer) (*Backend, error) { return nil, ErrNoCgo }

// Backends is empty without cgo.
func Backends() []*Backend { return nil }

// Default fails with ErrNoCgo.
func Default() (*Backend, error) { return nil, ErrNoCgo }

// Lookup fails with ErrNoCgo.
func Lookup(string) (*Backend, error) { return nil, ErrNoCgo }

func (*Backend) Name() string                                                 { return "" }
func (*Backend) Version() string                                              { return "" }
func (*Backend) Capabilities(int) (Capabilities, error)                       { return Capabilities{}, ErrNoCgo }
func (*Backend) Load(string, Options) (*Model, error)                         { return nil, ErrNoCgo }
func (*Model) Backend() *Backend                                              { return nil }
func (*Model) Info() ModelInfo                                                { return ModelInfo{} }
func (*Model) Tokenizer() []byte                                              { return nil }
func (*Model) Handle() unsafe.Pointer                                         { return nil }
func (*Model) Close()                                                         {}
func (*Model) NewContext(int) (*Context, error)                               { return nil, ErrNoCgo }
func (*Context) Forward(int, int, []int32, []int32, []int32, []float32) error { return ErrNoCgo }
func (*Context) SetThreads(int) error                                         { return ErrNoCgo }
func (*Context) Close()                                                       {}
