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

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/pairio"
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
		UsageText: "gomps score [--model M] --input FILE [--output FILE] [--format tsv] [--rank] [--top-k N] [--sigmoid]",
		Description: `Reads (query, passage) pairs and writes them back with the model's score as the
last column, one line per pair, in input order (with --rank: best first within each
run of lines sharing a query). Scores are raw logits unless --sigmoid, printed as the
shortest decimal that round-trips the float32.

TSV input: each line is exactly two fields, query<TAB>passage; the passage may be
empty, the query may not. The first line is a header only if it is literally
"query<TAB>passage", or with --header. A malformed line is an error naming file:line.
The format comes from the file extension (.tsv, .jsonl) unless --format names it;
the output format defaults to the input's.

The model is --model (or GOMPS_MODEL): a native .gomps file, a Hugging Face model
directory, or a model id in the Hugging Face cache. Without it, the Hugging Face cache
entry of cross-encoder/ms-marco-MiniLM-L-6-v2, else the test model installed by
tools/setup.sh (with a notice on stderr). The output file is written to a temporary
file and renamed into place, so it is never left half-written.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "native file, Hugging Face model dir or model id (default: see above)", EnvVars: []string{"GOMPS_MODEL"}},
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "input file (- for standard input)", EnvVars: []string{"GOMPS_INPUT"}, Required: true, TakesFile: true},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output file (default: standard output)", EnvVars: []string{"GOMPS_OUTPUT"}, TakesFile: true},
			&cli.StringFlag{Name: "format", Usage: "input format: tsv or jsonl (default: from the extension)", EnvVars: []string{"GOMPS_FORMAT"}},
			&cli.StringFlag{Name: "output-format", Usage: "output format: tsv, jsonl or trec (default: the input's)", EnvVars: []string{"GOMPS_OUTPUT_FORMAT"}},
			&cli.BoolFlag{Name: "header", Usage: "the first input line is a header, whatever it says", EnvVars: []string{"GOMPS_HEADER"}},
			&cli.BoolFlag{Name: "rank", Usage: "order each query's pairs by score, best first", EnvVars: []string{"GOMPS_RANK"}},
			&cli.IntFlag{Name: "top-k", Usage: "keep the k best pairs of each query (implies --rank; 0 = all)", EnvVars: []string{"GOMPS_TOP_K"}},
			&cli.BoolFlag{Name: "sigmoid", Usage: "print sigmoid(logit) instead of the raw logit", EnvVars: []string{"GOMPS_SIGMOID"}},
			&cli.StringFlag{Name: "precision", Usage: "f32 (exact), bf16 (CPU, fast on AMX) or f16 (Metal)", Value: "f32", EnvVars: []string{"GOMPS_PRECISION"}},
			&cli.IntFlag{Name: "threads", Usage: "native threads over all instances (0 = all CPUs)", EnvVars: []string{"GOMPS_THREADS"}},
			&cli.IntFlag{Name: "instances", Usage: "model instances running at once", Value: 1, EnvVars: []string{"GOMPS_INSTANCES"}},
			&cli.IntFlag{Name: "max-length", Usage: "tokens per pair incl. specials (0 = the model's maximum)", EnvVars: []string{"GOMPS_MAX_LENGTH"}},
			&cli.IntFlag{Name: "max-batch", Usage: "pairs per forward pass (0 = the batcher's default)", EnvVars: []string{"GOMPS_MAX_BATCH"}},
			&cli.StringFlag{Name: "batcher", Usage: "adaptive or fixed", Value: "adaptive", EnvVars: []string{"GOMPS_BATCHER"}},
			&cli.BoolFlag{Name: "truncate", Usage: "truncate pairs longer than --max-length (false: fail on them)", Value: true, EnvVars: []string{"GOMPS_TRUNCATE"}},
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
		gomps.WithInstances(c.Int("instances")),
	}
	if c.Bool("sigmoid") {
		opts = append(opts, gomps.WithSigmoid())
	}
	for _, f := range []struct {
		name string
		opt  func(int) gomps.Option
	}{{"threads", gomps.WithThreads}, {"max-length", gomps.WithMaxLength}, {"max-batch", gomps.WithMaxBatch}} {
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
	if inFormat == pairio.FormatTREC {
		return errors.New("score: TREC input (a run with queries and passages files) is not supported by score yet; use tsv or jsonl")
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

	ropt := pairio.Options{}
	if c.Bool("header") {
		ropt.Header = pairio.HeaderPresent
	}
	reader, err := pairio.Open(in, inFormat, ropt)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	defer reader.Close()

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
	if err := scoreStream(ctx, r, pairio.Groups(reader), w, prog); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	prog.done()
	return nil
}

// scoreStream reads whole query groups until about scoreChunk pairs, scores
// them in one ScorePairs call, writes them in input order, and repeats.
func scoreStream(ctx context.Context, r *gomps.Reranker, groups *pairio.GroupReader, w pairio.Writer, prog *progress) error {
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

// progress prints a line to stderr at most every 2 s, and a summary.
type progress struct {
	w            io.Writer
	quiet        bool
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
	if p.quiet || time.Since(p.last) < 2*time.Second {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "score: %d pairs, %.0f pairs/s\n", p.pairs, float64(p.pairs)/el)
}

func (p *progress) done() {
	if p.quiet {
		return
	}
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "score: %d pairs in %.2fs (%.0f pairs/s), model %s on %s\n",
		p.pairs, el, float64(p.pairs)/max(el, 1e-9), strings.TrimSpace(p.model), p.where)
}
