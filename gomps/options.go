package gomps

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gomps/gomps/gomps/internal/cpus"
	"github.com/gomps/gomps/gomps/internal/engine"
	"github.com/gomps/gomps/kernels/native"
)

// Option configures Open.
type Option func(*options) error

type options struct {
	sigmoid   bool
	truncate  bool
	backend   string // "" = the default backend
	precision string
	maxLength int // tokens per pair incl. specials; 0 = the model's max positions
	maxBatch  int // pairs per forward; 0 = 32
	threads   int // total native threads over all instances; 0 = cpus.Available()
	instances int // contexts (concurrent forwards); 0 = the backend's preferred count
	mode      engine.Mode
	routing   engine.Routing
	timeout   time.Duration // fixed batcher: longest a partial batch waits; 0 = 100ms
	maxQueue  int           // pairs admitted and not yet forwarded; 0 = 65536
	notices   io.Writer
	// trustUnverified accepts Hub files whose etag is no hash.
	trustUnverified bool
}

func defaultOptions() options {
	return options{truncate: true, precision: "f32", notices: os.Stderr}
}

// resolved fills the defaults that depend on the machine and the mode.
func (o options) resolved() options {
	if o.maxBatch == 0 {
		o.maxBatch = 64 // adaptive: rows also bounded by a token budget
		if o.mode == engine.ModeFixed {
			o.maxBatch = 32
		}
	}
	if o.maxQueue == 0 {
		o.maxQueue = 65536
	}
	if o.timeout == 0 {
		o.timeout = 100 * time.Millisecond
	}
	if o.threads == 0 {
		o.threads = cpus.Available()
	}
	return o
}

// WithSigmoid makes scores sigmoid(logit), in (0, 1), instead of the raw
// logit the model outputs (the default, as sentence-transformers prints).
func WithSigmoid() Option {
	return func(o *options) error { o.sigmoid = true; return nil }
}

// WithTruncation sets whether pairs longer than the maximum length are
// truncated (longest_first, as the Hugging Face fast tokenizer does; the
// default) or refused with a *TooLongError matching ErrTooLong.
func WithTruncation(on bool) Option {
	return func(o *options) error { o.truncate = on; return nil }
}

// WithPrecision selects the native compute precision: "f32" (the exact
// default, within 1e-4 of PyTorch), "bf16" (CPU: bf16 matrix products where
// bf16 is native, AMX or AVX512-BF16) or "f16" (Metal). Where the backend
// does not run it natively (Backend().Precisions), Open fails with
// ErrUnsupported saying which precisions run.
func WithPrecision(p string) Option {
	return func(o *options) error {
		if _, ok := native.ParsePrecision(p); !ok {
			return fmt.Errorf("precision %q: want %s", p, orList(native.PrecisionNames()))
		}
		o.precision = p
		return nil
	}
}

// orList writes "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// WithBackend selects the native backend by name ("cpu", "metal", or one a
// test registered through kernels/native). The default is the backend built
// into this program for its platform. Open fails with ErrNoBackend naming
// the backends this program has when there is no such backend.
func WithBackend(name string) Option {
	return func(o *options) error { o.backend = name; return nil }
}

// WithMaxLength sets the maximum tokens per pair, [CLS] and both [SEP]
// included (default: the model's max positions, 512 for MiniLM). 3 at least.
func WithMaxLength(n int) Option {
	return func(o *options) error {
		if n < 3 || n > 65536 {
			return fmt.Errorf("max length %d: want 3..65536", n)
		}
		o.maxLength = n
		return nil
	}
}

// WithMaxBatch sets the most pairs per native forward call (default 64 with
// the adaptive batcher, 32 with the fixed one).
// Larger batches amortise per-call cost but pad more; memory per instance
// grows with maxBatch x maxLength.
func WithMaxBatch(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 4096 {
			return fmt.Errorf("max batch %d: want 1..4096", n)
		}
		o.maxBatch = n
		return nil
	}
}

// WithThreads sets the total native threads, split evenly over the instances
// (default: the CPUs this process may use: its affinity mask, bounded by its
// cgroup's CPU quota).
func WithThreads(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("threads %d: want 1..1024", n)
		}
		o.threads = n
		return nil
	}
}

// WithInstances sets how many native contexts run forward passes at once.
// Each holds its own scratch memory; the weights are shared. The default is
// the backend's answer for the thread budget (DefaultInstances): on the CPU
// one instance per thread, at most 4; on Metal 1.
func WithInstances(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 256 {
			return fmt.Errorf("instances %d: want 1..256", n)
		}
		o.instances = n
		return nil
	}
}

// WithBatcher selects how pairs are cut into batches: "adaptive" (the
// default: pairs of similar length under a padded-token budget, dispatched
// as soon as an instance is free) or "fixed" (FIFO batches of max batch
// pairs, flushed when full or after 100 ms).
func WithBatcher(mode string) Option {
	return parsedOption("batcher", mode, "adaptive or fixed", engine.ParseMode, func(o *options, m engine.Mode) { o.mode = m })
}

// parsedOption is an Option that parses s and stores the result with set;
// an error names the option, the value and what it wants.
func parsedOption[T any](name, s, want string, parse func(string) (T, error), set func(*options, T)) Option {
	return func(o *options) error {
		v, err := parse(s)
		if err != nil {
			return fmt.Errorf("%s %q: want %s", name, s, want)
		}
		set(o, v)
		return nil
	}
}

// WithMaxQueue bounds the pairs admitted and not yet forwarded, over all
// concurrent calls (default 65536). A call that would pass it fails at once
// with ErrOverloaded. Score splits its input into chunks of 1024 pairs, so
// one large call never trips it alone.
func WithMaxQueue(n int) Option {
	return func(o *options) error {
		if n < chunkPairs {
			return fmt.Errorf("max queue %d: want at least %d", n, chunkPairs)
		}
		o.maxQueue = n
		return nil
	}
}

// WithNotices sets where Open writes one-line notices, such as "scores come
// from the test model" (default os.Stderr; nil silences them).
func WithNotices(w io.Writer) Option {
	return func(o *options) error { o.notices = w; return nil }
}

// WithTrustUnverified makes a model download from the Hugging Face Hub (a
// model id not in the cache) accept files the server names by an etag that
// is no hash, checking only their size. By default every downloaded file is
// verified against its sha256 (LFS) or git blob sha1, and a file that cannot
// be is refused (hfhub.ErrUnverified).
func WithTrustUnverified() Option {
	return func(o *options) error { o.trustUnverified = true; return nil }
}

// WithRouting selects which instance gets each batch: "least-loaded" (the
// default; adaptive batcher: an idle instance, fixed batcher: the one with
// the least queued padded tokens) or "round-robin" (instances in turn, so a
// batch may wait at a busy instance while another is idle). It matters only
// with more than one instance.
func WithRouting(routing string) Option {
	return parsedOption("routing", routing, "least-loaded or round-robin", engine.ParseRouting,
		func(o *options, r engine.Routing) { o.routing = r })
}

// WithBatchTimeout sets how long the fixed batcher lets a partial batch
// collect pairs before sending it (default 100ms).
// A shorter timeout lowers latency at light load and sends fuller-padded,
// smaller batches; the adaptive batcher has no timer and ignores it.
func WithBatchTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > time.Minute {
			return fmt.Errorf("batch timeout %v: want more than 0 and at most 1m", d)
		}
		o.timeout = d
		return nil
	}
}
