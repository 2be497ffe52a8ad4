package native_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneBinding: this package is the only Go code that calls the native
// ABI. The ABI's only symbols are the backends' accessors
// (gomps_backend_<name>); every other function is reached through their
// tables, which only this package holds.
func TestOneBinding(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	accessor := regexp.MustCompile(`\bC\.gomps_backend_[a-z0-9_]+`)
	var callers []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		files++
		if strings.HasPrefix(rel, filepath.Join("kernels", "native")+string(filepath.Separator)) &&
			filepath.Dir(rel) == filepath.Join("kernels", "native") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if accessor.Match(b) {
			callers = append(callers, rel)
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 100, "the walk must have seen the module")
	assert.Empty(t, callers, "Go files outside kernels/native that call a backend's accessor")
}
