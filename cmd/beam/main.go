// Command beam scores (query, passage) pairs with gomps on an Apache Beam
// runner: Prism in this process by default, or Dataflow, Flink or Spark
// through Beam's own flags (--runner, --endpoint, --project, ...). See
// docs/distributed.md.
//
// Build it as gomps-beam: cd cmd/beam && go build -o ../../bin/gomps-beam .
//
// It is a separate Go module so that the gomps CLI's build and binary do not
// carry Beam. Flags are Go's standard flags, because Beam's runner options
// are registered there and the worker binary is re-run by the runner with
// them; each of our flags also reads GOMPS_<NAME> (dashes as underscores).
//
//	gomps-beam --model gomps/testdata/tiny --input pairs.jsonl --output out/scores.jsonl --shards 4
//
// The worker binary must be built with cgo (the scorer is native code) and
// passed with --worker_binary to runners that start separate workers; Beam's
// own worker build disables cgo.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

func main() {
	o := Options{}
	flag.StringVar(&o.Input, "input", "", "input file or glob (a local path or gs://; on a cluster, a path every worker can read)")
	flag.StringVar(&o.Format, "format", "", "input format: tsv, jsonl or trec (default: from the extension)")
	flag.StringVar(&o.Queries, "queries", "", "trec input: the qid<TAB>query file")
	flag.StringVar(&o.Passages, "passages", "", "trec input: the docid<TAB>text file (streamed; only the run's docids are kept)")
	flag.BoolVar(&o.Header, "header", false, "the first line of each input file is a header, whatever it says (without it: a header is recognized by its column names, as gomps score does)")
	flag.BoolVar(&o.SkipBad, "skip-bad", false, "skip malformed lines, counted and logged with file:line, instead of failing")
	flag.StringVar(&o.Output, "output", "", "output path <stem><ext>; shards are written as <stem>-00000-of-0000N<ext>")
	flag.StringVar(&o.OutputFormat, "output-format", "", "output format: tsv, jsonl or trec (default: the input's)")
	flag.IntVar(&o.Shards, "shards", 1, "output shards; query q goes to shard FNV-1a-64(q) mod N, as gomps score --shard i/N")
	flag.IntVar(&o.TopK, "top-k", 0, "keep each query's best K pairs, ranked (0 = all)")
	flag.BoolVar(&o.Rerank, "rank", false, "order each query's pairs by score, best first (as trec_eval orders a run)")
	flag.StringVar(&o.Tag, "tag", "gomps", "TREC run tag")
	flag.IntVar(&o.Batch, "batch", 64, "pairs per scoring batch within a bundle")
	flag.StringVar(&o.Model.Model, "model", "", "model: a native .gomps file or a Hugging Face dir, at a path every worker can read")
	flag.StringVar(&o.Model.Precision, "precision", "", "compute precision: f32 (default), bf16 or f16")
	flag.IntVar(&o.Model.MaxLength, "max-length", 0, "tokens per pair incl. specials (0 = the model's maximum)")
	flag.IntVar(&o.Model.Threads, "threads", 0, "native threads per worker process (0 = all cores)")
	flag.IntVar(&o.Model.Instances, "instances", 0, "model instances per worker process (0 = the library default)")
	flag.BoolVar(&o.Model.Sigmoid, "sigmoid", false, "output sigmoid(logit) instead of the raw logit")
	truncate := flag.Bool("truncate", true, "truncate pairs longer than --max-length (false: fail naming file:line)")
	if err := envDefaults(flag.CommandLine); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	flag.Parse()
	o.Model.NoTruncate = !*truncate
	// On a worker, Init runs the harness and never returns.
	beam.Init()

	if err := run(context.Background(), o); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
}

// ourFlags are the flags that read GOMPS_* variables (Beam's do not).
var ourFlags = []string{"input", "format", "queries", "passages", "header", "skip-bad", "output", "output-format", "shards",
	"top-k", "rank", "tag", "batch", "model", "precision", "max-length", "threads", "instances", "sigmoid", "truncate"}

// envDefaults sets each of our flags from GOMPS_<NAME> when it is set; the
// command line still wins because it is parsed afterwards.
func envDefaults(fs *flag.FlagSet) error {
	for _, name := range ourFlags {
		if fs.Lookup(name) == nil {
			continue
		}
		env := "GOMPS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("beam: %s=%q: %w", env, v, err)
			}
		}
	}
	return nil
}

// Summary is what a finished run reports, from the pipeline's counters.
type Summary struct {
	PairsRead, PairsScored, Queries, BadLinesSkipped int64
}

func run(ctx context.Context, o Options) error {
	s, err := runPipeline(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "beam: scored %d pairs of %d queries into %d shard(s) of %s", s.PairsScored, s.Queries, o.Shards, o.Output)
	if o.SkipBad {
		fmt.Fprintf(os.Stderr, "; skipped %d malformed line(s)", s.BadLinesSkipped)
	}
	fmt.Fprintln(os.Stderr)
	return nil
}

// runPipeline builds and runs the pipeline on the runner named by --runner
// and returns its counters.
func runPipeline(ctx context.Context, o Options) (Summary, error) {
	if err := o.check(); err != nil {
		return Summary{}, err
	}
	files, err := expandInput(ctx, o.Input)
	if err != nil {
		return Summary{}, err
	}
	if err := prepareOutput(o.Output); err != nil {
		return Summary{}, err
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, o, files)
	res, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		return Summary{}, fmt.Errorf("beam: pipeline failed: %w", err)
	}
	var sum Summary
	if res != nil {
		for _, c := range res.Metrics().AllMetrics().Counters() {
			if c.Key.Namespace != "gomps" {
				continue
			}
			switch c.Key.Name {
			case "pairs_read":
				sum.PairsRead += c.Result()
			case "pairs_scored":
				sum.PairsScored += c.Result()
			case "queries_scored":
				sum.Queries += c.Result()
			case "bad_lines_skipped":
				sum.BadLinesSkipped += c.Result()
			}
		}
	}
	return sum, nil
}

// prepareOutput creates the output directory of a local path (Beam's local
// filesystem does not); remote object stores need none.
func prepareOutput(out string) error {
	if strings.Contains(out, "://") {
		return nil
	}
	dir := out[:strings.LastIndex(out, "/")+1]
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("beam: --output: %w", err)
	}
	return nil
}
