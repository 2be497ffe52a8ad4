package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/weights"
)

func init() { register(newConvertCommand()) }

// convertSummary is what convert reports (stderr text, or --json on stdout).
type convertSummary struct {
	Input        string  `json:"input"`
	Output       string  `json:"output"`
	Name         string  `json:"name"`
	DType        string  `json:"dtype"`
	Bytes        int64   `json:"bytes"`
	Tensors      int     `json:"tensors"`
	Layers       int     `json:"layers"`
	Hidden       int     `json:"hidden"`
	Heads        int     `json:"heads"`
	Intermediate int     `json:"intermediate"`
	Vocab        int     `json:"vocab"`
	MaxPosition  int     `json:"max_position"`
	SourceSHA256 string  `json:"source_sha256"`
	Seconds      float64 `json:"seconds"`
}

// newConvertCommand builds the convert command; tests build fresh ones
// because urfave/cli flags keep state between runs.
func newConvertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert a Hugging Face model directory or model id to the native weights file",
		UsageText: "gomps convert --input DIR|MODEL_ID --output FILE [--dtype f32|f16] [--head head.safetensors] [--name NAME]",
		Description: `Reads config.json, model.safetensors (F32, F16 or BF16) and tokenizer.json of a
BertForSequenceClassification cross-encoder with one label (or of a BertModel encoder
plus --head, a safetensors file holding pooler.dense.* and classifier.*), and writes the
native format of weights/FORMAT.md: Q, K and V fused per layer, the tokenizer embedded,
every tensor on a 16 KiB boundary with a CRC-32C. --input is a directory, or a model id
("org/name") found as gomps score finds one: in the local Hugging Face cache
(HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), else downloaded from the
Hub into that cache (config.json, model.safetensors, tokenizer.json at revision main;
HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 forbids it). The output is written to a
temporary file next to FILE, validated, then renamed, so FILE is never half-written.
Progress and a summary go to stderr; --json prints the summary as JSON on stdout.`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name: "input", Aliases: []string{"i"}, Usage: "Hugging Face model directory, or model id (the local cache, else the Hub)",
				EnvVars: []string{"GOMPS_CONVERT_INPUT"}, Required: true, TakesFile: true,
			},
			trustUnverifiedFlag(),
			&cli.StringFlag{
				Name: "output", Aliases: []string{"o"}, Usage: "native weights file to write",
				EnvVars: []string{"GOMPS_CONVERT_OUTPUT"}, Required: true, TakesFile: true,
			},
			&cli.StringFlag{
				Name: "dtype", Usage: "tensor dtype in the file: f32 (exact) or f16 (Metal's fp16 mode)",
				Value: "f32", EnvVars: []string{"GOMPS_CONVERT_DTYPE"},
			},
			&cli.StringFlag{
				Name: "head", Usage: "safetensors file with pooler.dense.* and classifier.* replacing the model's (needed for a BertModel encoder)",
				EnvVars: []string{"GOMPS_CONVERT_HEAD"}, TakesFile: true,
			},
			&cli.StringFlag{
				Name: "tokenizer", Usage: "tokenizer.json to embed instead of the model directory's",
				EnvVars: []string{"GOMPS_CONVERT_TOKENIZER"}, TakesFile: true,
			},
			&cli.StringFlag{
				Name: "name", Usage: "model name stored in the file (default: the model id, else the directory name)",
				EnvVars: []string{"GOMPS_CONVERT_NAME"},
			},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or summary on stderr", EnvVars: []string{"GOMPS_QUIET"}},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object on stdout", EnvVars: []string{"GOMPS_JSON"}},
		},
		Action: runConvert,
	}
}

func runConvert(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	dt, err := weights.ParseDType(c.String("dtype"))
	if err != nil {
		return err
	}
	errw := c.App.ErrWriter
	if errw == nil {
		errw = os.Stderr
	}
	if c.Bool("quiet") {
		errw = io.Discard
	}
	tty := isTerminal(errw)
	start := time.Now()
	opts := weights.ConvertOptions{
		DType: dt, Name: c.String("name"), Head: c.String("head"), Tokenizer: c.String("tokenizer"),
		Progress: func(done, total int, tensor string) {
			// On a terminal one line is rewritten; elsewhere a line per quarter.
			switch {
			case tty:
				fmt.Fprintf(errw, "\rconvert: %d/%d tensors %-40s", done, total, tensor)
				if done == total {
					fmt.Fprintln(errw)
				}
			case done == total || done*4/total != (done-1)*4/total:
				fmt.Fprintf(errw, "convert: %d/%d tensors\n", done, total)
			}
		},
	}
	src, err := gomps.FetchModel(c.Context, c.String("input"), errw, withTrust(c, nil)...)
	if err != nil {
		return err
	}
	if src.Kind != gomps.SourceHFDir {
		return fmt.Errorf("%s is a native weights file already", src.Path)
	}
	res, err := weights.Convert(src.Path, c.String("output"), opts)
	if err != nil {
		if tty {
			fmt.Fprintln(errw)
		}
		return err
	}
	s := convertSummary{
		Input: res.Input, Output: res.Output, Name: res.Name, DType: res.DType.String(), Bytes: res.FileSize,
		Tensors: res.Tensors, Layers: res.Config.NumLayers, Hidden: res.Config.HiddenSize, Heads: res.Config.NumHeads,
		Intermediate: res.Config.IntermediateSize, Vocab: res.Config.VocabSize, MaxPosition: res.Config.MaxPosition,
		SourceSHA256: res.SourceSum, Seconds: time.Since(start).Seconds(),
	}
	fmt.Fprintf(errw, "convert: wrote %s: %q, %s, %.1f MB, %d tensors (%d layers, hidden %d, %d heads, ffn %d, vocab %d) in %.2fs\n",
		s.Output, s.Name, s.DType, float64(s.Bytes)/1e6, s.Tensors, s.Layers, s.Hidden, s.Heads, s.Intermediate, s.Vocab, s.Seconds)
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(s)
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
