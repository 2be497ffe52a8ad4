// Package weights reads and writes model weights in pure Go (no cgo, so every
// parser can be fuzzed): safetensors files, Hugging Face model directories and
// the local Hugging Face cache, and the gomps native weight format of
// FORMAT.md, which the converter writes and every backend reads.
//
// # Reading Hugging Face models
//
//	OpenSafetensors(path) (*Safetensors, error)  validated header; tensors read on demand (mmap)
//	LoadHFDir(dir, WithHead(p), WithTokenizer(p)) (*Model, error)
//	ResolveHFCache(modelID) (dir string, error)  HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub
//	ResolveModelDir(src) (dir, modelID string, error)  a directory, else a cached model id
//
// LoadHFDir accepts exactly one model: a BertForSequenceClassification with
// one label, absolute position embeddings and erf GELU ("gelu"), with the
// `bert.`-prefixed names of that class or the bare names of BertModel. Shapes
// come from config.json, so any size of the family loads. A BertModel encoder
// needs WithHead: a safetensors file holding pooler.dense.{weight,bias} and
// classifier.{weight [1,H], bias [1]} (this is how the test model is built
// from the all-MiniLM-L6-v2 encoder and a committed seeded head). Anything
// else is rejected by name, saying what it is and why.
//
// # The native format
//
//	(*Model).WriteNative(w, NativeOptions{DType, Name, Progress}) error
//	Convert(src, dst, ConvertOptions{DType, Name, Head, Tokenizer, Progress}) (*ConvertResult, error)
//	OpenNative(path) (*Native, error)
//	    Config, DType, Name, Tokenizer, TokenizerSHA256, SourceSHA256, Tensors,
//	    Tensor(name) (bytes, dtype, shape, error), Float32(name), Close
//
// The writer fuses each layer's Q, K and V into one [3H, H] weight and [3H]
// bias, stores F32 (default) or F16, embeds tokenizer.json, and is byte-for-byte
// deterministic (testdata/golden pins it; regenerate with
// `go test ./weights -run TestConvertGolden -update`). Convert writes a
// temporary file, re-opens it with OpenNative, and renames it into place.
// OpenNative checks every rule of FORMAT.md in the order given there,
// including the header CRC-32C, the tokenizer SHA-256, each tensor's CRC-32C
// and zero padding, so opening reads the file once. The file is memory-mapped
// on Unix (Tensor then returns views of the mapping, valid until Close) and
// read through io.ReaderAt elsewhere.
//
// # Errors
//
// Every validation failure is an *Error naming the file, the tensor or field,
// and the rule, which is one of the Err* sentinels (errors.Is works):
//
//	weights: m.gomps: tensor "layer.0.qkv.weight": tensor CRC-32C mismatch: stored 1a2b3c4d, computed 00ff00ff
//
// No reader panics or allocates from a size in a file before bounding it by
// the real file size; FuzzSafetensors and FuzzNative check this.
//
// # Concurrency
//
// Safetensors, Model and Native may be used from several goroutines at once;
// Close must not run concurrently with other calls. A file truncated by
// another process while mapped faults on access: gomps never writes a file it
// has open, and Convert replaces its output by rename.
//
// The subpackage weightstest builds seeded synthetic model directories for
// tests.
package weights
