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
		Description: `Reads (query, passage) pairs and writes them back with the model's score, in input
order (with --rank: best first within each run of pairs sharing a query). Scores are
raw logits unless --sigmoid, printed as the shortest decimal that round-trips the
float32.

Input formats: --format names it; otherwise the file extension does (.tsv or .txt,
.jsonl, .ndjson or .json, .run or .trec), and for standard input (--input -) and other
extensions the first line does: a JSON object is JSONL, query<TAB>passage is TSV; a
line that is neither, or that could be both, is an error asking for --format.

  TSV, one pair per line: exactly two fields, the passage may be empty, the query
  may not. The first line is a header if it is literally "query<TAB>passage", or
  with --header.
      How many people live in Berlin?<TAB>Berlin has 3.5 million inhabitants.

  JSONL, one pair per line; qid, docid, rank and score are optional:
      {"qid": "q1", "query": "How many people live in Berlin?", "docid": "d1", "passage": "Berlin has 3.5 million inhabitants."}

  JSONL, one query per line with its passages (qid optional):
      {"qid": "q1", "query": "How many people live in Berlin?", "passages": ["Berlin has 3.5 million inhabitants.", "Berlin is known for its museums."]}

  JSONL, one query per line with its candidates; docid, rank and score (or
  bm25_score) optional, the text may also sit in "doc": {"text"|"contents"|"segment"}:
      {"qid": "q1", "query": "How many people live in Berlin?", "candidates": [{"docid": "d1", "text": "Berlin has 3.5 million inhabitants.", "rank": 1, "score": 12.5}]}

  qid and docid are strings or integers. Unknown JSON fields are ignored. A
  malformed line is an error naming file:line.

  TREC (--format trec): --input is a 6-column run (qid Q0 docid rank score tag),
  --queries a qid<TAB>query file and --passages a docid<TAB>text file, each with an
  optional header row. The passages file is streamed once, keeping only the docids
  the run names, so it may be larger than memory.

Output formats: --output-format, else the input's (TSV for TSV input, JSONL for
JSONL input, TREC for TREC input).

  TSV, one line per pair: [qid<TAB>][docid<TAB>]query<TAB>passage<TAB>score. The qid
  column is there when the input has query ids, the docid column when it has
  passage ids (set by the first pair); TSV input gives query, passage, score.
  --header starts the output with a row naming the columns.

  JSONL, one line per query, in the candidates shape (it reads back as input):
      {"qid": "q1", "query": "...", "candidates": [{"docid": "d1", "text": "...", "score": 8.607138, "rank": 1, "input_rank": 3}]}
  qid and docid are left out when the input has none; rank (the new rank) is
  there with --rank or --top-k, input_rank when the input had a first-stage rank.

  TREC: a reranked run, "qid Q0 docid rank score gomps", each query ordered as
  trec_eval orders a run (score descending, ties by docid descending); it needs
  query and passage ids (TREC input, or JSONL with qid and docid).

--skip-bad skips malformed lines (and run entries whose query or passage is
missing) instead of failing, and prints how many were skipped on stderr.

--shard i/n scores only shard i of n (0 <= i < n): a query belongs to shard
FNV-1a-64(key) mod n, where the key is the query id (TREC qid, JSONL "qid") or,
for input without ids (TSV, JSONL without qid), the query text itself. All of a
query's pairs stay in one shard, so the n outputs concatenated hold every pair.

Progress goes to stderr and follows the engine's counters, so it moves with every
forward pass. On a terminal: one bar, redrawn 4 times a second, with pairs done,
percentage, pairs/s and ETA. Elsewhere (a pipe, a file, a CI log): a line when
scoring starts, one every 5 seconds (pairs done, percentage, pairs/s, ETA) and a
summary at the end. The total behind the percentage and ETA is counted from the
input file beside the scoring (standard input cannot be read twice, so there it
is pairs and pairs/s only). --quiet prints none of it (skip counts still print).

The model is --model (or GOMPS_MODEL): a native .gomps file, a Hugging Face model
directory, or a model id, taken from the Hugging Face cache or else downloaded from
the Hub (HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 forbids it), converted once and
kept in ~/.cache/gomps/models (GOMPS_CACHE). Without it, the Hugging Face cache
entry of cross-encoder/ms-marco-MiniLM-L-6-v2, else the test model installed by
tools/setup.sh (with a notice on stderr). The output file is written to a temporary
file and renamed into place, so it is never left half-written.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "native file, Hugging Face model dir or model id (default: see above)", EnvVars: []string{"GOMPS_MODEL"}},
			trustUnverifiedFlag(),
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "input file (- for standard input)", EnvVars: []string{"GOMPS_INPUT"}, Required: true, TakesFile: true},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output file (default: standard output)", EnvVars: []string{"GOMPS_OUTPUT"}, TakesFile: true},
			&cli.StringFlag{Name: "format", Usage: "input format: tsv, jsonl or trec (default: from the extension, else from the first line)", EnvVars: []string{"GOMPS_FORMAT"}},
			&cli.StringFlag{Name: "queries", Usage: "TREC input: the qid<TAB>query file", EnvVars: []string{"GOMPS_QUERIES"}, TakesFile: true},
			&cli.StringFlag{Name: "passages", Usage: "TREC input: the docid<TAB>text file (streamed)", EnvVars: []string{"GOMPS_PASSAGES"}, TakesFile: true},
			&cli.StringFlag{Name: "output-format", Usage: "output format: tsv, jsonl or trec (default: the input's)", EnvVars: []string{"GOMPS_OUTPUT_FORMAT"}},
			&cli.BoolFlag{Name: "header", Usage: "TSV header rows: the first TSV input line is one, whatever it says, and TSV output starts with one", EnvVars: []string{"GOMPS_HEADER"}},
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
	opts, err := appendIntOptions(opts, c, engineIntOptions)
	if err != nil {
		return nil, err
	}
	if k := c.Int("top-k"); k < 0 {
		return nil, fmt.Errorf("--top-k %d is negative", k)
	}
	return withTrust(c, opts), nil
}

func scoreAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (use --input)", c.Args().First())
	}
	in := c.String("input")
	if in == "" {
		return errors.New("--input is empty")
	}
	// The input format: --format, else the file extension, else (standard
	// input, other extensions) the first line, told when the file is opened.
	var inFormat pairio.Format
	var err error
	if f := c.String("format"); f != "" {
		if inFormat, err = pairio.ParseFormat(f); err != nil {
			return err
		}
	} else if in != "-" {
		inFormat, _ = pairio.FormatOf(in)
	}
	queries, passages := c.String("queries"), c.String("passages")
	if inFormat == pairio.FormatTREC {
		if queries == "" || passages == "" {
			return errors.New("TREC input needs --queries (qid<TAB>query) and --passages (docid<TAB>text)")
		}
		if in == "-" {
			return errors.New("TREC input needs a run file, not standard input")
		}
	} else if queries != "" || passages != "" {
		return errors.New("--queries and --passages go with TREC input (--format trec)")
	}
	spec, err := shard.ParseSpec(c.String("shard"))
	if err != nil {
		return fmt.Errorf("--shard: %w", err)
	}
	var outFormat pairio.Format
	if f := c.String("output-format"); f != "" {
		if outFormat, err = pairio.ParseFormat(f); err != nil {
			return err
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
	var trecIn *pairio.TRECReader
	if inFormat == pairio.FormatTREC {
		if trecIn, err = pairio.OpenTREC(in, queries, passages, ropt); err != nil {
			return err
		}
		reader = trecIn
	} else {
		rc, err := pairio.Open(in, inFormat, ropt)
		if errors.Is(err, pairio.ErrAmbiguousFormat) {
			return fmt.Errorf("%w; name it with --format tsv or --format jsonl", err)
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		reader, inFormat = rc, rc.Format()
	}
	if outFormat == "" {
		outFormat = inFormat
	}

	r, err := gomps.Open(ctx, c.String("model"), opts...)
	if err != nil {
		return err
	}
	defer r.Close()

	var out pairio.Output = writerOutput{c.App.Writer}
	if p := c.String("output"); p != "" && p != "-" {
		if out, err = pairio.CreateAtomic(p); err != nil {
			return err
		}
	}
	defer out.Abort() // no-op after Commit
	w, err := pairio.NewWriter(out, outFormat, pairio.WriterOptions{Rerank: c.Bool("rank"), TopK: c.Int("top-k"), Header: c.Bool("header")})
	if err != nil {
		return err
	}

	prog := newProgress(c.App.ErrWriter, c.Bool("quiet"), termWriter(c.App.ErrWriter), scoredSince(r))
	defer prog.end("")
	// The total is counted beside the scoring (a second, quiet pass over
	// the file), so progress starts at once and gains a percentage and an
	// ETA when the count is in. Standard input cannot be read twice.
	if trecIn != nil {
		prog.setTotal(trecIn.Count(spec.KeepPair))
	} else if in != "-" {
		countCtx, stopCount := context.WithCancel(ctx)
		counted := make(chan struct{})
		go func() {
			defer close(counted)
			if n, err := countPairs(countCtx, in, inFormat, ropt, spec); err == nil {
				prog.setTotal(n)
			}
		}()
		defer func() { stopCount(); <-counted }()
	}

	info := r.Info()
	prog.begin(fmt.Sprintf("score: scoring %s with model %s on %s", inputName(in), modelName(info), where(info)))
	n, err := scoreStream(ctx, r, pairio.Groups(reader), spec, w)
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := out.Commit(); err != nil {
		return err
	}
	el := prog.elapsed().Seconds()
	prog.end(fmt.Sprintf("score: %d pairs in %.2fs (%.0f pairs/s), model %s on %s",
		n, el, float64(n)/max(el, 1e-9), modelName(info), where(info)))
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

// pairScorer is what scoreStream needs of a *gomps.Reranker.
type pairScorer interface {
	Do(ctx context.Context, req gomps.Request) (gomps.Result, error)
	Stats() gomps.Stats
}

var _ pairScorer = (*gomps.Reranker)(nil)

// scoredSince returns the pairs r's engine has scored since this call: the
// progress counter, which moves with every forward pass.
func scoredSince(r pairScorer) func() int {
	base := r.Stats().PairsScored
	return func() int { return int(r.Stats().PairsScored - base) }
}

// scoreStream reads whole query groups until about scoreChunk pairs, scores
// them in one library call (Do), writes them in input order, and repeats. It
// returns how many pairs it scored.
func scoreStream(ctx context.Context, r pairScorer, groups *pairio.GroupReader, spec shard.Spec, w pairio.Writer) (int, error) {
	total := 0
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
			return total, readErr
		}
		if n > 0 {
			pairs := make([]gomps.Pair, 0, n)
			for _, g := range batch {
				for _, it := range g {
					pairs = append(pairs, gomps.Pair{Query: it.Query, Passage: it.Passage})
				}
			}
			res, err := r.Do(ctx, gomps.Request{Pairs: pairs})
			if err != nil {
				var tl *gomps.TooLongError
				if errors.As(err, &tl) {
					return total, fmt.Errorf("%s: %w", itemAt(batch, tl.Index).Pos, err)
				}
				return total, err
			}
			k := 0
			for _, g := range batch {
				sg := make([]pairio.Scored, len(g))
				for i, it := range g {
					sg[i] = pairio.Scored{Item: it, Score: float64(res.Scores[k])}
					k++
				}
				if err := w.WriteGroup(sg); err != nil {
					return total, err
				}
			}
			total += n
		}
		if readErr != nil {
			return total, nil
		}
	}
}

// countPairs counts the pairs of a TSV or JSONL file that scoring will see:
// the items a reader with opt yields (malformed lines skipped, as --skip-bad
// would), within the shard.
func countPairs(ctx context.Context, path string, format pairio.Format, opt pairio.Options, spec shard.Spec) (int, error) {
	opt.SkipBad, opt.OnSkip = true, nil
	rc, err := pairio.Open(path, format, opt)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n := 0
	for {
		if n%1024 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		it, err := rc.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if spec.KeepPair(it.QID, it.Query) {
			n++
		}
	}
}

// inputName names --input in messages.
func inputName(in string) string {
	if in == "-" {
		return "standard input"
	}
	return in
}

// modelName is the model's recorded name, else its path.
func modelName(in gomps.Info) string {
	if m := strings.TrimSpace(in.Model); m != "" {
		return m
	}
	return in.Path
}

// where says what a reranker runs on: backend, ISA, precision and threads.
func where(in gomps.Info) string {
	return fmt.Sprintf("%s %s %s, %d threads", in.Backend, in.ISA, in.Precision, in.Threads)
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
