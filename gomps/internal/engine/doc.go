// Package engine is gomps' serving engine: a tokenizer pool, a dynamic
// batcher and a pool of backend instances, with per-request timings and
// metrics. It knows nothing of cgo, tokenizers or models: the library plugs
// in an Encoder (the tokenizer) and a NewInstanceFunc (one backend context
// per pool slot) and gets concurrent, batched scoring.
//
// # Wiring (for gomps.Reranker)
//
//	eng, err := engine.New(engine.Config{
//		Instances: 2,                       // pool slots, one context each over the shared model
//		Threads:   cpus.Available(),        // ONE budget for tokenization and all instances
//		MaxBatch:  info.MaxBatch,           // the model's max rows per forward
//		MaxSeq:    info.MaxSeq,             // 512 for MiniLM-L6, specials included
//		ClsID:     101, SepID: 102,         // from the tokenizer's vocabulary
//	}, encoder, func(slot int) (engine.Instance, error) {
//		return newContext(model)            // gomps_context_init on the calling (locked) thread
//	})
//	res, err := eng.Score(ctx, query, passages, engine.Call{}) // res.Scores[i] is passage i's raw logit
//	prometheus.MustRegister(eng.Collector())    // for the server's /metrics
//	err = eng.Shutdown(ctx)                     // or eng.Close()
//
// Encoder.EncodeQuery / EncodePassages return token ids WITHOUT special
// tokens and WITHOUT truncation (a passage may stop after the first tokens
// that can survive truncation; daulet/tokenizers: Encode(text, false), ids
// converted to int32; the model's tokenizer.json sets no truncation); the engine
// assembles [CLS] q [SEP] p [SEP] with token types 0/1 and truncates each
// pair longest_first to MaxSeq exactly as Hugging Face tokenizers does
// (AssemblePair, PairLengths; checked against tokenizers 0.22.1 on 1,264
// length combinations). The Encoder is called from several goroutines at
// once and must be safe for that.
//
// Instance is one backend context. Each slot's instance lives on one
// goroutine locked to its OS thread (runtime.LockOSThread) for its whole
// life: the factory, SetThreads, every Forward and Close run there, so a
// per-thread OpenMP pool or a thread-local init error stays put. Forward gets
// a padded Batch (Rows x Seq, Seq = the longest row, padding id 0 type 0) and
// writes Rows x Labels raw logits; 1 <= Rows <= MaxBatch, 3 <= Lengths[r] <= Seq <=
// MaxSeq. The Batch's buffers are the engine's and are reused: read them only
// during the call. They hold no Go pointers, so &b.IDs[0], &b.Types[0],
// &b.Lengths[0] and &logits[0] may go straight to one native forward
// call (cgo pins them for its duration). A Forward error fails every request with a
// pair in that batch (ErrBackend wraps it); a panic does the same and the
// instance is closed and rebuilt through the factory (if that fails the slot
// is retired; with no slot left every call fails with ErrBackend).
//
// # Threads
//
// Config.Threads is one budget (a FIFO semaphore) shared by tokenization and
// every instance: each instance is given Config.InstanceThreads (default
// max(1, Threads/Instances)) threads through SetThreads and holds that many
// budget threads for each forward; each tokenization job holds one. So on 2
// cores, 2 instances x 1 thread or 1 instance x 2 threads, and a tokenization
// job runs only while a thread is free (between forwards, with the default):
// the cores are never oversubscribed by the engine's own work. The wait for a
// thread counts in the call's Tokenize time.
//
// # Batching
//
// Config.Mode selects the batcher; one goroutine owns the queue.
//
//   - ModeAdaptive (default). Batches go out the moment an instance is idle,
//     never on a timer. They are cut a window at a time: the oldest
//     Config.Window queued pairs (FIFO), extended to the end of the call
//     straddling the window's end, are sorted by length and partitioned
//     into consecutive batches of at most MaxBatch rows with rows x longest
//     row <= Config.TokenBudget, choosing the cut points that minimise padded
//     tokens plus Config.BatchOverhead tokens per batch (default
//     TokenBudget/8, so a few long pairs get a batch of their own instead of
//     padding a full batch of short ones). The window's batches are sent one
//     by one as instances free; the next window is cut when they are gone.
//     When a window yields fewer batches than there are idle instances
//     (light load), it is split into equal slices across them instead.
//     Pairs of different requests and queries share batches; a large request
//     is split across batches and its scores merged back in order. Every
//     pair waits behind at most the pairs queued before it plus its own
//     window, and the calls of a window finish together, with its last
//     (longest) batch. A call that reaches the queue just after a window was
//     cut waits up to one window more, so the window must be small against
//     the pairs in flight for tails to stay tight: the default, 256, is an
//     eighth of the standard workload's 2,048. On the CPU backend padding
//     costs nothing (only real tokens are computed), so a small window loses
//     no throughput there. A backend that computes padded rows (Metal's
//     static-shape buckets) loses about 11% to padding at window 256 in the
//     simulation: it wants BatchOverhead = TokenBudget/32 (tighter batches)
//     or a window of 512 or more (see Policy check).
//   - ModeFixed. FIFO batches of up to MaxBatch pairs, cut when full or
//     when Config.Timeout has passed since the partial batch began
//     collecting, then routed to an instance (where it may wait).
//
// Config.Routing: RouteLeastLoaded (default; adaptive: an idle instance,
// fixed: the least queued padded tokens) or RouteRoundRobin (instances in
// turn; a batch may wait, one deep in adaptive mode, at a busy instance
// while another is idle).
//
// # Admission, cancellation, lifecycle
//
// At most Config.MaxQueue pairs may be admitted and not yet started on a
// backend; past that Score fails at once with ErrOverloaded (the server's
// 429). When a caller's ctx ends, Score returns at once and the call's pairs
// still queued are removed (Stats.PairsDropped); pairs already in a running
// batch finish and are ignored. Shutdown(ctx) refuses new calls with
// ErrClosed and lets admitted ones finish with scores; Close stops now, and
// waits only for forward calls already running. Both are safe to call twice
// and concurrently; afterwards every call returns ErrClosed.
//
// # Timings
//
// Every successful call returns Timings from its own clock reads:
// Tokenize (hand-off to the tokenizer pool until its pairs are assembled,
// waiting for a worker and a budget thread included), Queue (enqueue at the
// batcher until the start of the first batch holding one of its pairs) and
// Inference (that start until the end of the last batch holding one of its
// pairs; when a call is split, the gaps between its batches count here).
// Total is end to end; Unexplained() = Total - the three, computed only for
// reporting (admission, hand-offs, result delivery).
//
// # Metrics
//
// Stats() snapshots one set of atomic counters and histograms; Collector()
// exposes the same values to Prometheus under fixed, TEI-like names:
// gomps_request_duration_seconds, gomps_tokenization_duration_seconds,
// gomps_queue_duration_seconds, gomps_inference_duration_seconds,
// gomps_batch_size, gomps_batch_tokens, gomps_padding_waste_ratio,
// gomps_queue_size, gomps_requests_total, gomps_request_success_total,
// gomps_request_failures_total{reason}, gomps_pairs_total,
// gomps_pairs_dropped_total{reason}, gomps_batches_total,
// gomps_batches_mixed_total and the real/padded token totals.
//
// # Cost
//
// Per call: the request, one flat id/type buffer pair, offsets and the
// scores slice (plus what the Encoder allocates). Per batch: nothing in
// steady state (jobs and the padded batch buffers are reused). Per window the
// scheduler sorts at most Window entries and runs an O(Window x MaxBatch)
// partition.
//
// # Policy check
//
// TestClosedLoopSimulation runs the standard workload's shape (32
// closed-loop callers x 64 pairs, TREC DL-like lengths, tokenization taking
// fake time and a budget thread) in fake time against two cost models: the
// CPU backend's (per real token for the linear layers plus each row's
// length squared for attention; padding free) and a padded backend's (every
// row at the batch's longest length, Metal-like). Over 640 steady-state
// requests (warm-up and cool-down rounds left out) it requires, for 1 and 2
// instances, at least 90% of the raw throughput of the same pairs sorted
// over the whole workload (PlanBatches), p99 <= 1.3 x p50 and max <= 2 x
// p99: under the CPU model with the default configuration, under the padded
// model with the default window and BatchOverhead = TokenBudget/32 (with
// the default overhead it reaches about 87%). GOMPS_SIM_SWEEP=1 logs other
// windows and overheads, the fixed mode, and a third model that runs the
// padded cost through the Metal backend's buckets. It checks the
// scheduling policy; the real backend's figures come from the library's
// benchmark (BenchmarkEngineDL19).
package engine
