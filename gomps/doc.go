// Package gomps scores (query, passage) pairs with a MiniLM cross-encoder
// (cross-encoder/ms-marco-MiniLM-L-6-v2 and its BERT family) through a
// native backend: C over oneDNN on the CPU, Objective-C + MPSGraph on Apple
// silicon. The backend sits behind one versioned C header,
// kernels/gomps.h, reached only through its Go binding (kernels/native):
// Open asks the backend what it can do here and configures the engine from
// the answers.
//
// # Use
//
//	r, err := gomps.Open(ctx, "")            // the default model, see ResolveModel
//	if err != nil { ... }
//	defer r.Close()
//	scores, err := r.Score(ctx, "How many people live in Berlin?", passages)
//
// Score and Rank are shorthands of the one scoring call, Do, which takes a
// Request (a query and its passages, or pairs with their own queries, and
// per-call truncation: the side cut, a token cap per passage, windows for
// long passages) and returns a Result: the scores with every label's
// logits, the token counts, the truncations and the timings.
//
// Scores are the classifier's raw logits, as sentence-transformers prints
// them (8.607138 for the first Berlin example with the real model), unless
// WithSigmoid. Input is assembled as [CLS] query [SEP] passage [SEP] with
// token types 0 then 1 and truncated longest_first to the maximum length
// exactly as the Hugging Face fast tokenizer does; WithTruncation(false)
// refuses too-long pairs with a *TooLongError instead.
//
// # Models
//
// Open takes a native weights file (weights/FORMAT.md), a Hugging Face model
// directory (converted to a temporary native file at load), or a model id in
// the local Hugging Face cache. ResolveModel documents the defaults; the
// last of them is the real-shape TEST model installed by tools/setup.sh,
// whose scores are not the real reranker's (Open says so on stderr).
//
// # Cost
//
// Open reads the whole weights file once, packs it for the backend and
// allocates each instance's scratch memory (max batch x max length); it
// starts the engine's goroutines, which Close stops. Do tokenizes the
// query once per 1024 passages and each passage once (linear in the text),
// then runs forward passes over batches the engine cuts from pairs of
// similar length; one cgo call per batch, with Go-allocated buffers lent to
// C for that call only. A forward pass of MiniLM-L6 over n tokens costs
// about 2 x 10.6 M x n multiply-adds plus attention (quadratic in the pair's
// length).
//
// # Concurrency
//
// A *Reranker is safe for concurrent use by any number of goroutines:
// concurrent calls share batches, and up to Info().Instances forward passes
// run at once, each native context driven by one locked OS thread. The model
// weights are immutable and shared by every instance. Close is idempotent,
// may race with calls in progress (they return ErrClosed) and returns after
// every native resource is freed.
//
// # Errors
//
// Every error matches a sentinel with errors.Is: ErrEmptyQuery,
// ErrInvalidUTF8, ErrTooLong, ErrClosed, ErrOverloaded, ErrNoModel, ErrNoCgo,
// ErrABIMismatch, context.Canceled / context.DeadlineExceeded, or, for a
// failure inside the backend, the sentinel of its status class (ErrFormat,
// ErrUnsupported, ...) through an *Error carrying the code, the operation
// and the backend's message. Nothing panics across the boundary. Error
// texts name no package ("passage 3: text is not valid UTF-8"): each layer
// adds where, once, and a program adds its own name.
package gomps
