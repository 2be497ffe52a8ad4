package pairio

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/trec"
)

func scored(qid, docid string, score float64) Scored {
	return Scored{Item: Item{QID: qid, Query: "query " + qid, DocID: docid, Passage: "text of " + docid}, Score: score}
}

func TestTRECWriterTrecEvalOrder(t *testing.T) {
	var b bytes.Buffer
	w := NewTRECWriter(&b, WriterOptions{Tag: "run1"})
	g := []Scored{scored("q", "b", 1), scored("q", "d", 2), scored("q", "c", 1), scored("q", "a", 1), scored("q", "c10", 1), scored("q", "e", float64(float32(0.1)))}
	require.NoError(t, w.WriteGroup(g))
	require.NoError(t, w.Flush())
	assert.Equal(t, "q Q0 d 1 2 run1\nq Q0 c10 2 1 run1\nq Q0 c 3 1 run1\nq Q0 b 4 1 run1\nq Q0 a 5 1 run1\nq Q0 e 6 0.1 run1\n", b.String(),
		"score desc, ties by docid desc; float32 scores printed as float32")

	// trec_eval's own ordering of the written run agrees with the rank column.
	run, err := trec.ReadRun(strings.NewReader(b.String()), "w")
	require.NoError(t, err)
	run.Sort()
	for i, e := range run["q"] {
		assert.Equal(t, i+1, e.Rank, "docid %s", e.DocID)
	}

	b.Reset()
	w = NewTRECWriter(&b, WriterOptions{TopK: 2})
	require.NoError(t, w.WriteGroup([]Scored{scored("q", "x", 0.5), scored("q", "y", 3), scored("q", "z", 2)}))
	require.NoError(t, w.Flush())
	assert.Equal(t, "q Q0 y 1 3 gomps\nq Q0 z 2 2 gomps\n", b.String(), "top-k")

	for name, g := range map[string][]Scored{
		"no-ids":    {{Item: Item{Query: "q", Passage: "p"}, Score: 1}},
		"nan":       {scored("q", "a", math.NaN())},
		"inf":       {scored("q", "a", math.Inf(1))},
		"duplicate": {scored("q", "a", 1), scored("q", "a", 2)},
	} {
		assert.Error(t, NewTRECWriter(&b, WriterOptions{}).WriteGroup(g), name)
	}
}

func TestTSVWriterRoundTrip(t *testing.T) {
	in := "q1\tp1\nq1\tp\ttab\n"
	_, err := readAll(t, NewTSVReader(strings.NewReader(in), "x", Options{}))
	require.Error(t, err, "sanity: tabs in passages are not readable TSV")

	var b bytes.Buffer
	w := NewTSVWriter(&b, WriterOptions{})
	g := []Scored{
		{Item: Item{Query: "q1", Passage: "p\twith\ttabs\nand newline\r"}, Score: 0.25},
		{Item: Item{Query: "q1", Passage: ""}, Score: float64(float32(-4.3200774))},
	}
	require.NoError(t, w.WriteGroup(g))
	require.NoError(t, w.Flush())
	assert.Equal(t, "q1\tp with tabs and newline\r\t0.25\nq1\t\t-4.3200774\n", b.String(), "input columns + score, input order")

	b.Reset()
	w = NewTSVWriter(&b, WriterOptions{Rerank: true})
	require.NoError(t, w.WriteGroup([]Scored{scored("1", "a", 1), scored("1", "b", 2)}))
	require.NoError(t, w.Flush())
	assert.Equal(t, "1\tb\tquery 1\ttext of b\t2\n1\ta\tquery 1\ttext of a\t1\n", b.String(), "ids first when the input has them; reranked")
}

func TestJSONLWriterRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := NewJSONLWriter(&b, WriterOptions{TopK: 2})
	g := []Scored{scored("7", "a", 1), scored("7", "b", 3), scored("7", "c", 2)}
	g[0].InputRank = 1
	require.NoError(t, w.WriteGroup(g))
	require.NoError(t, w.WriteGroup([]Scored{{Item: Item{Query: "<q&>", Passage: "p"}, Score: 0.5}}))
	require.NoError(t, w.Flush())
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, `{"qid":"7","query":"query 7","candidates":[{"docid":"b","text":"text of b","score":3,"rank":1},{"docid":"c","text":"text of c","score":2,"rank":2}]}`, lines[0])
	assert.Equal(t, `{"query":"<q&>","candidates":[{"text":"p","score":0.5,"rank":1}]}`, lines[1])

	items, err := readAll(t, NewJSONLReader(&b, "out", Options{}))
	require.NoError(t, err)
	require.Len(t, items, 3)
	assert.Equal(t, "b", items[0].DocID)
	assert.Equal(t, 3.0, items[0].InputScore, "the written score reads back as the input score")
	assert.Equal(t, "<q&>", items[2].Query)
}

func TestAtomicCommitAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tsv")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o640))

	a, err := CreateAtomic(p)
	require.NoError(t, err)
	_, err = a.Write([]byte("new"))
	require.NoError(t, err)
	got, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(got), "target untouched before commit")
	require.NoError(t, a.Abort())
	require.NoError(t, a.Abort(), "abort is idempotent")
	got, _ = os.ReadFile(p)
	assert.Equal(t, "old", string(got))
	_, err = os.Stat(a.TempName())
	assert.True(t, os.IsNotExist(err), "abort removes the temp file")

	a, err = CreateAtomic(p)
	require.NoError(t, err)
	_, err = a.Write([]byte("new"))
	require.NoError(t, err)
	require.NoError(t, a.Commit())
	require.NoError(t, a.Commit(), "commit is idempotent")
	require.NoError(t, a.Abort(), "abort after commit does nothing")
	got, _ = os.ReadFile(p)
	assert.Equal(t, "new", string(got))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "mode of the replaced file kept")
	_, err = a.Write([]byte("x"))
	assert.Error(t, err, "write after commit")
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temp files left")
}

const atomicChildEnv = "GOMPS_PAIRIO_ATOMIC_CHILD"

// TestAtomicKillChild is the child half of TestAtomicKilledMidWrite: it
// writes to the path in the env var without end until killed.
func TestAtomicKillChild(t *testing.T) {
	path := os.Getenv(atomicChildEnv)
	if path == "" {
		t.Skip("child process of TestAtomicKilledMidWrite only")
	}
	a, err := CreateAtomic(path)
	if err != nil {
		os.Exit(3)
	}
	w := NewTSVWriter(a, WriterOptions{})
	chunk := make([]Scored, 1000)
	for i := range chunk {
		chunk[i] = Scored{Item: Item{Query: "q", Passage: strings.Repeat("new ", 20)}, Score: 1}
	}
	for i := 0; ; i++ {
		if err := w.WriteGroup(chunk); err != nil {
			os.Exit(4)
		}
		if err := w.Flush(); err != nil {
			os.Exit(5)
		}
		if i == 0 {
			os.Stdout.WriteString("writing\n")
		}
		if os.Getenv(atomicChildEnv+"_COMMIT") == "1" && i == 3 {
			if a.Commit() != nil {
				os.Exit(6)
			}
			os.Stdout.WriteString("committed\n")
			time.Sleep(time.Hour)
		}
	}
}

// TestAtomicKilledMidWrite kills a process writing output with SIGKILL and
// checks the target holds its old content, or does not exist.
func TestAtomicKilledMidWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		old    string // "" = no file before
		commit bool
	}{
		{name: "target=existing"},
		{name: "target=absent"},
		{name: "target=existing/committed", commit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out.tsv")
			old := ""
			if tc.name != "target=absent" {
				old = "old\tcontent\t1\n"
				require.NoError(t, os.WriteFile(p, []byte(old), 0o644))
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestAtomicKillChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), atomicChildEnv+"="+p)
			if tc.commit {
				cmd.Env = append(cmd.Env, atomicChildEnv+"_COMMIT=1")
			}
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(out)
			want := "writing"
			if tc.commit {
				want = "committed"
			}
			seen := false
			for sc.Scan() {
				if sc.Text() == want {
					seen = true
					break
				}
			}
			require.True(t, seen, "child reported %q", want)
			if !tc.commit {
				time.Sleep(50 * time.Millisecond) // let it write more
			}
			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()

			got, err := os.ReadFile(p)
			switch {
			case tc.commit:
				require.NoError(t, err)
				assert.True(t, strings.HasPrefix(string(got), "q\tnew new"), "committed content is in place")
			case old == "":
				assert.True(t, os.IsNotExist(err), "no file appears: %v", err)
			default:
				require.NoError(t, err)
				assert.Equal(t, old, string(got), "old content intact")
			}
			// The killed child leaves its temporary file; it is not the target.
			entries, _ := os.ReadDir(dir)
			var left []string
			for _, e := range entries {
				if e.Name() != "out.tsv" {
					assert.True(t, strings.HasPrefix(e.Name(), ".out.tsv.tmp-"), "only a temp file may be left: %s", e.Name())
					left = append(left, filepath.Join(dir, e.Name()))
				}
			}
			if tc.commit {
				return
			}
			require.Len(t, left, 1, "the killed writer's temporary file")
			// A live writer's temporary file, as old: never removed.
			live, err := CreateAtomic(p)
			require.NoError(t, err)
			defer live.Abort()
			old2 := time.Now().Add(-2 * abandonedAge)
			for _, f := range append(left, live.TempName()) {
				require.NoError(t, os.Chtimes(f, old2, old2))
			}
			// The next write of the same target removes what the dead one left.
			next, err := CreateAtomic(p)
			require.NoError(t, err)
			require.NoError(t, next.Abort())
			_, err = os.Stat(left[0])
			assert.True(t, os.IsNotExist(err), "the abandoned temporary file is removed: %v", err)
			_, err = os.Stat(live.TempName())
			assert.NoError(t, err, "the live writer's temporary file stays")
		})
	}
}
