//go:build !cgo

package gomps

// Without cgo there is no native backend: every load fails with ErrNoCgo.

// haveNative: no native backend without cgo.
const haveNative = false

type nativeModel struct{ info modelInfo }

type modelInfo struct {
	vocabSize, hidden, layers, heads, intermediate, maxPosition, typeVocab int
	precision, maxBatch, maxSeq                                            int
	backend, isa                                                           string
}

type nativeContext struct{}

func loadModel(string, int32, int, int) (*nativeModel, error) { return nil, ErrNoCgo }

func (*nativeModel) free() {}

func (*nativeModel) newContext(int) (*nativeContext, error) { return nil, ErrNoCgo }

func (*nativeContext) forward(int, int, []int32, []int32, []int32, []float32) error { return ErrNoCgo }

func (*nativeContext) setThreads(int) error { return ErrNoCgo }

func (*nativeContext) free() {}

func backendInfo() (BackendInfo, error) { return BackendInfo{}, ErrNoCgo }
