package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
)

func init() { register(newScoreCommand()) }

// scoreChunk is about how many pairs are scored per library call: whole query
// groups are added until it is reached, so --rank sees complete groups.
const scoreChunk = 4096

// newScoreCommand builds the score command; tests build fresh ones because
// urfave/cli flags keep state between runs.
func newScoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "score",
		Usage:     "score (query, passage) pairs from a file",
		UsageText: "gomps score [--model M] --input FILE [--queries QFILE --passages PFILE] [--output FILE] [--format tsv|jsonl|trec] [--output-format tsv|jsonl|trec] [--rank] [--top-k N] [--sigmoid] [--skip-bad] [--shard i/n]",
		Description: `Reads (query, passage) pairs and writes them back with the model's score as the
last column, one line per pair, in input order (with --rank: best first within each
run of lines sharing a query). Scores are raw logits unless --sigmoid, printed as the
shortest decimal that round-trips the float32.

TSV input: each line is exactly two fields, query<TAB>passage; the passage may be
empty, the query may not. The first line is a header only if it is literally
"query<TAB>passage", or with --header. A malformed line is an error naming file:line.
The format comes from the file extension (.tsv, .jsonl, .run or .trec) unless
--format names it; the output format defaults to the input's.

TREC input (--format trec): --input is a 6-column run (qid Q0 docid rank score tag),
--queries a qid<TAB>query file and --passages a docid<TAB>text file, each with an
optional header row. The passages file is streamed once, keeping only the docids the
run names, so it may be larger than memory. TREC output (--output-format trec) is a
reranked run, "qid Q0 docid rank score gomps", each query ordered as trec_eval
orders a run (score descending, ties by docid descending); it needs query and
passage ids (TREC input, or JSONL with qid and candidates).

--skip-bad skips malformed lines (and run entries whose query or passage is
missing) instead of failing, and prints how many were skipped on stderr.

--shard i/n scores only shard i of n (0 <= i < n): a query belongs to shard
FNV-1a-64(key) mod n, where the key is the query id (TREC qid, JSONL "qid") or,
for input without ids (TSV, JSONL without qid), the query text itself. All of a
query's pairs stay in one shard, so the n outputs concatenated hold every pair.

Progress: a progress bar on stderr when stderr is a terminal, otherwise a line
every few seconds; --quiet prints neither (skip counts are still printed).

The model is --model (or GOMPS_MODEL): a native .gomps file, a Hugging Face model
directory, or a model id, taken from the Hugging Face cache or else downloaded from
the Hub (HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 forbids it), converted once and
kept in ~/.cache/gomps/models (GOMPS_CACHE). Without it, the Hugging Face cache
entry of cross-encoder/ms-marco-MiniLM-L-6-v2, else the test model installed by
tools/setup.sh (with a notice on stderr). The output file is written to a temporary
file and renamed into place, so it is never left half-written.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "native file, Hugging Face model dir or model id (default: see above)", EnvVars: []string{"GOMPS_MODEL"}},
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "input file (- for standard input)", EnvVars: []string{"GOMPS_INPUT"}, Required: true, TakesFile: true},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output file (default: standard output)", EnvVars: []string{"GOMPS_OUTPUT"}, TakesFile: true},
			&cli.StringFlag{Name: "format", Usage: "input format: tsv, jsonl or trec (default: from the extension)", EnvVars: []string{"GOMPS_FORMAT"}},
			&cli.StringFlag{Name: "queries", Usage: "TREC input: the qid<TAB>query file", EnvVars: []string{"GOMPS_QUERIES"}, TakesFile: true},
			&cli.StringFlag{Name: "passages", Usage: "TREC input: the docid<TAB>text file (streamed)", EnvVars: []string{"GOMPS_PASSAGES"}, TakesFile: true},
			&cli.StringFlag{Name: "output-format", Usage: "output format: tsv, jsonl or trec (default: the input's)", EnvVars: []string{"GOMPS_OUTPUT_FORMAT"}},
			&cli.BoolFlag{Name: "header", Usage: "the first input line is a header, whatever it says", EnvVars: []string{"GOMPS_HEADER"}},
			&cli.BoolFlag{Name: "rank", Usage: "order each query's pairs by score, best first", EnvVars: []string{"GOMPS_RANK"}},
			&cli.IntFlag{Name: "top-k", Usage: "keep the k best pairs of each query (implies --rank; 0 = all)", EnvVars: []string{"GOMPS_TOP_K"}},
			&cli.BoolFlag{Name: "sigmoid", Usage: "print sigmoid(logit) instead of the raw logit", EnvVars: []string{"GOMPS_SIGMOID"}},
			&cli.StringFlag{Name: "precision", Usage: precisionUsage, Value: "f32", EnvVars: []string{"GOMPS_PRECISION"}},
			&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"GOMPS_THREADS"}},
			&cli.IntFlag{Name: "instances", Usage: "model instances running at once (0 = the backend's default: on the CPU one per thread, up to 4)", EnvVars: []string{"GOMPS_INSTANCES"}},
			&cli.IntFlag{Name: "max-length", Usage: "tokens per pair incl. specials (0 = the model's maximum)", EnvVars: []string{"GOMPS_MAX_LENGTH"}},
			&cli.IntFlag{Name: "max-batch", Usage: "pairs per forward pass (0 = the batcher's default)", EnvVars: []string{"GOMPS_MAX_BATCH"}},
			&cli.StringFlag{Name: "batcher", Usage: "adaptive or fixed", Value: "adaptive", EnvVars: []string{"GOMPS_BATCHER"}},
			&cli.BoolFlag{Name: "truncate", Usage: "truncate pairs longer than --max-length (false: fail on them)", Value: true, EnvVars: []string{"GOMPS_TRUNCATE"}},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip malformed input lines and count them (default: fail naming file:line)", EnvVars: []string{"GOMPS_SKIP_BAD"}},
			&cli.StringFlag{Name: "shard", Usage: "score only shard i of n, by query id or, without ids, query text (i/n, 0 <= i < n)", EnvVars: []string{"GOMPS_SHARD"}},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr", EnvVars: []string{"GOMPS_QUIET"}},
		},
		Action: scoreAction,
	}
}

// scoreOptions turns the flags into library options.
func scoreOptions(c *cli.Context) ([]gomps.Option, error) {
	opts := []gomps.Option{
		gomps.WithNotices(c.App.ErrWriter),
		gomps.WithPrecision(c.String("precision")),
		gomps.WithBatcher(c.String("batcher")),
		gomps.WithTruncation(c.Bool("truncate")),
	}
	if c.Bool("sigmoid") {
		opts = append(opts, gomps.WithSigmoid())
	}
	for _, f := range []struct {
		name string
		opt  func(int) gomps.Option
	}{{"threads", gomps.WithThreads}, {"instances", gomps.WithInstances}, {"max-length", gomps.WithMaxLength}, {"max-batch", gomps.WithMaxBatch}} {
		switch n := c.Int(f.name); {
		case n < 0:
			return nil, fmt.Errorf("score: --%s %d is negative", f.name, n)
		case n > 0:
			opts = append(opts, f.opt(n))
		}
	}
	if k := c.Int("top-k"); k < 0 {
		return nil, fmt.Errorf("score: --top-k %d is negative", k)
	}
	return opts, nil
}

func scoreAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("score: unexpected argument %q (use --input)", c.Args().First())
	}
	in := c.String("input")
	if in == "" {
		return errors.New("score: --input is empty")
	}
	var inFormat pairio.Format
	var err error
	if f := c.String("format"); f != "" {
		inFormat, err = pairio.ParseFormat(f)
	} else if in == "-" {
		inFormat = pairio.FormatTSV
	} else {
		inFormat, err = pairio.FormatOf(in)
	}
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	queries, passages := c.String("queries"), c.String("passages")
	if inFormat == pairio.FormatTREC {
		if queries == "" || passages == "" {
			return errors.New("score: TREC input needs --queries (qid<TAB>query) and --passages (docid<TAB>text)")
		}
		if in == "-" {
			return errors.New("score: TREC input needs a run file, not standard input")
		}
	} else if queries != "" || passages != "" {
		return fmt.Errorf("score: --queries and --passages go with TREC input (--format trec), not %s", inFormat)
	}
	spec, err := shard.ParseSpec(c.String("shard"))
	if err != nil {
		return fmt.Errorf("score: --shard: %w", err)
	}
	outFormat := inFormat
	if f := c.String("output-format"); f != "" {
		if outFormat, err = pairio.ParseFormat(f); err != nil {
			return fmt.Errorf("score: %w", err)
		}
	}
	opts, err := scoreOptions(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	ropt := pairio.Options{SkipBad: c.Bool("skip-bad")}
	if c.Bool("header") {
		ropt.Header = pairio.HeaderPresent
	}
	if ropt.SkipBad && !c.Bool("quiet") {
		shown := 0
		ropt.OnSkip = func(le *pairio.LineError) {
			if shown++; shown <= maxSkipNotices {
				fmt.Fprintf(c.App.ErrWriter, "score: skipped %s: %s\n", le.Pos, le.Msg)
			}
		}
	}
	var reader pairio.Reader
	total := 0 // pairs in all, when known before scoring (TREC input)
	if inFormat == pairio.FormatTREC {
		tr, err := pairio.OpenTREC(in, queries, passages, ropt)
		if err != nil {
			return fmt.Errorf("score: %w", err)
		}
		reader, total = tr, tr.Len()
	} else {
		rc, err := pairio.Open(in, inFormat, ropt)
		if err != nil {
			return fmt.Errorf("score: %w", err)
		}
		defer rc.Close()
		reader = rc
	}

	r, err := gomps.Open(ctx, c.String("model"), opts...)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	defer r.Close()

	var out pairio.Output = writerOutput{c.App.Writer}
	if p := c.String("output"); p != "" && p != "-" {
		if out, err = pairio.CreateAtomic(p); err != nil {
			return fmt.Errorf("score: %w", err)
		}
	}
	defer out.Abort() // no-op after Commit
	w, err := pairio.NewWriter(out, outFormat, pairio.WriterOptions{Rerank: c.Bool("rank"), TopK: c.Int("top-k")})
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	prog := newProgress(c.App.ErrWriter, c.Bool("quiet"), r.Info())
	if spec.All() {
		prog.total = total
	}
	prog.bar = !prog.quiet && termWriter(c.App.ErrWriter)
	if err := scoreStream(ctx, r, pairio.Groups(reader), spec, w, prog); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	prog.done()
	if ropt.SkipBad {
		fmt.Fprintf(c.App.ErrWriter, "score: skipped %d malformed lines\n", reader.Skipped())
	}
	return nil
}

// maxSkipNotices bounds the per-line notices of --skip-bad; the total is
// always printed.
const maxSkipNotices = 10

// termWriter reports whether w is a terminal (x/term: a tty, not any
// character device such as /dev/null).
func termWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// scoreStream reads whole query groups until about scoreChunk pairs, scores
// them in one ScorePairs call, writes them in input order, and repeats.
func scoreStream(ctx context.Context, r *gomps.Reranker, groups *pairio.GroupReader, spec shard.Spec, w pairio.Writer, prog *progress) error {
	for {
		var batch [][]pairio.Item
		n := 0
		var readErr error
		for n < scoreChunk {
			g, err := groups.Next()
			if err != nil {
				readErr = err
				break
			}
			if !spec.KeepPair(g[0].QID, g[0].Query) {
				continue
			}
			batch = append(batch, g)
			n += len(g)
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return fmt.Errorf("score: %w", readErr)
		}
		if n > 0 {
			pairs := make([]gomps.Pair, 0, n)
			for _, g := range batch {
				for _, it := range g {
					pairs = append(pairs, gomps.Pair{Query: it.Query, Passage: it.Passage})
				}
			}
			scores, err := r.ScorePairs(ctx, pairs)
			if err != nil {
				var tl *gomps.TooLongError
				if errors.As(err, &tl) {
					return fmt.Errorf("score: %s: %w", itemAt(batch, tl.Index).Pos, err)
				}
				return fmt.Errorf("score: %w", err)
			}
			k := 0
			for _, g := range batch {
				sg := make([]pairio.Scored, len(g))
				for i, it := range g {
					sg[i] = pairio.Scored{Item: it, Score: float64(scores[k])}
					k++
				}
				if err := w.WriteGroup(sg); err != nil {
					return fmt.Errorf("score: %w", err)
				}
			}
			prog.add(n)
		}
		if readErr != nil {
			return nil
		}
	}
}

// itemAt returns the i-th item over the groups of a batch.
func itemAt(batch [][]pairio.Item, i int) pairio.Item {
	for _, g := range batch {
		if i < len(g) {
			return g[i]
		}
		i -= len(g)
	}
	return pairio.Item{}
}

// writerOutput is standard output (the app's writer) as a pairio.Output.
type writerOutput struct{ io.Writer }

func (writerOutput) Commit() error { return nil }
func (writerOutput) Abort() error  { return nil }

// progress prints a line to stderr at most every 2 s, or, with bar, redraws
// a one-line progress bar at most every 200 ms; then a summary.
type progress struct {
	w            io.Writer
	quiet        bool
	bar          bool // stderr is a terminal
	total        int  // pairs in all, 0 if unknown
	start, last  time.Time
	pairs        int
	model, where string
}

func newProgress(w io.Writer, quiet bool, in gomps.Info) *progress {
	model := in.Model
	if model == "" {
		model = in.Path
	}
	where := fmt.Sprintf("%s %s %s, %d threads", in.Backend, in.ISA, in.Precision, in.Threads)
	now := time.Now()
	return &progress{w: w, quiet: quiet, start: now, last: now, model: model, where: where}
}

func (p *progress) add(n int) {
	p.pairs += n
	every := 2 * time.Second
	if p.bar {
		every = 200 * time.Millisecond
	}
	if p.quiet || time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	if p.bar {
		fmt.Fprint(p.w, "\r"+barLine(p.pairs, p.total, float64(p.pairs)/el)+"\x1b[K")
		return
	}
	fmt.Fprintf(p.w, "score: %d pairs, %.0f pairs/s\n", p.pairs, float64(p.pairs)/el)
}

// barLine draws the progress bar: a 30-cell bar and percentage when the total
// is known, else the count alone.
func barLine(pairs, total int, rate float64) string {
	if total <= 0 {
		return fmt.Sprintf("score: %d pairs, %.0f pairs/s", pairs, rate)
	}
	const cells = 30
	frac := min(float64(pairs)/float64(total), 1)
	full := int(frac * cells)
	eta := ""
	if rate > 0 {
		eta = fmt.Sprintf(", eta %s", time.Duration(float64(total-pairs)/rate*float64(time.Second)).Round(time.Second))
	}
	return fmt.Sprintf("score: [%s%s] %3.0f%% %d/%d pairs, %.0f pairs/s%s",
		strings.Repeat("=", full), strings.Repeat(" ", cells-full), 100*frac, pairs, total, rate, eta)
}

func (p *progress) done() {
	if p.quiet {
		return
	}
	if p.bar && !p.last.Equal(p.start) {
		fmt.Fprint(p.w, "\r\x1b[K") // clear the bar
	}
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "score: %d pairs in %.2fs (%.0f pairs/s), model %s on %s\n",
		p.pairs, el, float64(p.pairs)/max(el, 1e-9), strings.TrimSpace(p.model), p.where)
}
