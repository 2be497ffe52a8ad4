package doccheck

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checker(t *testing.T) *Checker {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := Root(wd)
	require.NoError(t, err)
	c, err := NewChecker(root)
	require.NoError(t, err)
	return c
}

// TestArchitecture: every path, route, C name, Go name, command and package
// docs/ARCHITECTURE.md names exists.
func TestArchitecture(t *testing.T) {
	t.Parallel()
	c := checker(t)
	page, err := os.ReadFile(filepath.Join(c.Root, "docs", "ARCHITECTURE.md"))
	require.NoError(t, err)
	checked := 0
	for _, tok := range Tokens(string(page)) {
		ok, err := c.Check(tok)
		if ok {
			checked++
		}
		assert.NoError(t, err, "docs/ARCHITECTURE.md:%d: `%s`", tok.Line, tok.Text)
	}
	assert.Greater(t, checked, 50, "the page names the house's files and packages")
}

// TestArchitectureLayers: no package imports one listed above it in the
// Packages table ("data flows down this list").
func TestArchitectureLayers(t *testing.T) {
	t.Parallel()
	c := checker(t)
	page, err := os.ReadFile(filepath.Join(c.Root, "docs", "ARCHITECTURE.md"))
	require.NoError(t, err)
	assert.Empty(t, c.Layering(Tokens(string(page))))
}

// TestLayeringCatches: an import up the table is reported; one down it,
// within a row, or from an unlisted package is not.
func TestLayeringCatches(t *testing.T) {
	t.Parallel()
	c := &Checker{Imports: map[string]map[string]bool{
		"a":       {"b/x": true, "a/y": true},
		"b/x":     {"a": true},
		"b/x/sub": {"a/z": true},
		"tools/q": {"a": true},
	}}
	tokens := Tokens("## Packages\n| what | x |\n|---|---|\n| `a` | top |\n| `b/x` | below |\n")
	assert.Equal(t, []string{"b/x (row 2) imports a (row 1)", "b/x/sub (row 2) imports a/z (row 1)"}, c.Layering(tokens))
}

// TestNoStrayArchitectureMentions: a comment or doc that points at the
// architecture page gives its path.
func TestNoStrayArchitectureMentions(t *testing.T) {
	t.Parallel()
	c := checker(t)
	stray, err := StrayMentions(c.Root)
	require.NoError(t, err)
	assert.Empty(t, stray, "say docs/ARCHITECTURE.md")
}

// TestCheckerCatches: the checker flags each kind of name that does not
// exist and passes the ones that do.
func TestCheckerCatches(t *testing.T) {
	t.Parallel()
	c := checker(t)
	for i, tc := range []struct {
		text    string
		cell    bool
		checked bool
		ok      bool
	}{
		{"weights/FORMAT.md", false, true, true},
		{"weights/NOFORMAT.md", false, true, false},
		{"gomps/internal/engine", false, true, true},
		{"gomps/internal/nothing/", false, true, false},
		{"README.md", false, true, true},
		{"/rerank", false, true, true},
		{"/v9/rerank", false, true, false},
		{"gomps_backend_cpu", false, true, true},
		{"gomps_backend_tpu", false, true, false},
		{"GOMPS_ERR_UNSUPPORTED", false, true, true},
		{"GOMPS_ERR_NOPE", false, true, false},
		{"gomps.Open", false, true, true},
		{"gomps.Close", false, true, false},
		{"gomps.Reranker.Do", false, true, true},
		{"gomps.Reranker.Nothing", false, true, false},
		{"engine.Config.Threads", false, true, true},
		{"engine.Config.Cores", false, true, false},
		{"engine.Instance.Forward", false, true, true},
		{"nopkg.Open", false, true, false},
		{"gomps bench", false, true, true},
		{"gomps fly", false, true, false},
		{"weights", true, true, true},
		{"wheels", true, true, false},
		{"wheels", false, false, true},
		{"[CLS] q [SEP] p [SEP]", false, false, true},
		{"gomps/backend_<name>.go", false, false, true},
	} {
		t.Run(strconv.Itoa(i)+"/"+tc.text, func(t *testing.T) {
			checked, err := c.Check(Token{Text: tc.text, PackageCell: tc.cell})
			assert.Equal(t, tc.checked, checked, "checked")
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// TestTokens: tokens carry their line, and only the Packages table's first
// cells are package cells.
func TestTokens(t *testing.T) {
	t.Parallel()
	page := "# T\n`a/b`\n## Packages\n| `gomps`, `weights` | `x` |\n| `kernels` | k |\n## Other\n| `y` | `z` |\n"
	assert.Equal(t, []Token{
		{Text: "a/b", Line: 2},
		{Text: "gomps", Line: 4, PackageCell: true, Row: 1},
		{Text: "weights", Line: 4, PackageCell: true, Row: 1},
		{Text: "x", Line: 4, Row: 1},
		{Text: "kernels", Line: 5, PackageCell: true, Row: 2},
		{Text: "y", Line: 7},
		{Text: "z", Line: 7},
	}, Tokens(page))
}
