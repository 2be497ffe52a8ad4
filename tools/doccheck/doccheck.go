package doccheck

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Root returns the repository root: the nearest directory at or above dir
// with a go.mod declaring module github.com/gomps/gomps.
func Root(dir string) (string, error) {
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/gomps/gomps\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("doccheck: no go.mod of github.com/gomps/gomps above the working directory")
		}
		dir = parent
	}
}

// walkFiles calls fn for every file under root with its path and its
// root-relative slash path, skipping hidden directories and those named
// skipDir.
func walkFiles(root, skipDir string, fn func(path, rel string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == skipDir) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return fn(path, filepath.ToSlash(rel))
	})
}

// Names are the Go names declared in the repository, by package name: "Open",
// "Reranker.Score", "Config.Threads".
type Names map[string]map[string]bool

// Repo is what the Go files of the repository declare and import.
type Repo struct {
	Names Names
	// Imports are the repository's own packages each directory's non-test
	// files import, as root-relative directories ("gomps/internal/engine").
	Imports map[string]map[string]bool
}

const modulePath = "github.com/gomps/gomps"

// ScanGo parses every non-test Go file under root (build constraints
// ignored, testdata and hidden directories skipped) and collects its
// declarations and imports.
func ScanGo(root string) (*Repo, error) {
	repo := &Repo{Names: Names{}, Imports: map[string]map[string]bool{}}
	fset := token.NewFileSet()
	err := walkFiles(root, "testdata", func(path, rel string) error {
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		set := repo.Names[f.Name.Name]
		if set == nil {
			set = map[string]bool{}
			repo.Names[f.Name.Name] = set
		}
		addDecls(set, f)
		dir := pathpkg.Dir(rel)
		if repo.Imports[dir] == nil {
			repo.Imports[dir] = map[string]bool{}
		}
		for _, im := range f.Imports {
			ip := strings.Trim(im.Path.Value, `"`)
			if rest, ok := strings.CutPrefix(ip, modulePath+"/"); ok {
				repo.Imports[dir][rest] = true
			}
		}
		return nil
	})
	return repo, err
}

func addDecls(set map[string]bool, f *ast.File) {
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				set[d.Name.Name] = true
				continue
			}
			if recv := recvName(d.Recv.List[0].Type); recv != "" {
				set[recv+"."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						set[n.Name] = true
					}
				case *ast.TypeSpec:
					set[s.Name.Name] = true
					addMembers(set, s.Name.Name, s.Type)
				}
			}
		}
	}
}

// addMembers records a struct's fields and an interface's methods.
func addMembers(set map[string]bool, typ string, t ast.Expr) {
	var fields *ast.FieldList
	switch x := t.(type) {
	case *ast.StructType:
		fields = x.Fields
	case *ast.InterfaceType:
		fields = x.Methods
	default:
		return
	}
	for _, f := range fields.List {
		for _, n := range f.Names {
			set[typ+"."+n.Name] = true
		}
	}
}

// recvName is the type name of a method receiver: T, *T, T[P], *T[P].
func recvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	goName     = regexp.MustCompile(`^([a-z][a-z0-9]*)\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)$`)
	cName      = regexp.MustCompile(`^(gomps_[a-z0-9_]+|GOMPS_[A-Z0-9_]+)$`)
	route      = regexp.MustCompile(`^/[a-z0-9/]*$`)
	command    = regexp.MustCompile(`^gomps ([a-z]+)$`)
	fileExt    = regexp.MustCompile(`\.(go|c|h|m|metal|md|sh|py|json|yml|yaml|txt)$`)
)

// Token is one backticked name of the page and where it stands.
type Token struct {
	Text string
	Line int
	// PackageCell: the token stands in the first column of the Packages
	// table, where a bare word names a package directory.
	PackageCell bool
	// Row is the token's row of the Packages table, counted from 1 (0
	// outside it).
	Row int
}

// Tokens returns the page's backticked tokens in order.
func Tokens(page string) []Token {
	var out []Token
	section, row := "", 0
	sc := bufio.NewScanner(strings.NewReader(page))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimPrefix(line, "## ")
		}
		firstCell, inRow := "", 0
		if section == "Packages" && strings.HasPrefix(line, "| ") {
			if cells := strings.SplitN(line, "|", 3); len(cells) == 3 && strings.Contains(cells[1], "`") {
				firstCell = cells[1]
				row++
				inRow = row
			}
		}
		for _, m := range backticked.FindAllStringSubmatchIndex(line, -1) {
			text := line[m[2]:m[3]]
			in := firstCell != "" && m[0] < len(firstCell)+1
			out = append(out, Token{Text: text, Line: n, PackageCell: in, Row: inRow})
		}
	}
	return out
}

// Checker checks tokens against a repository.
type Checker struct {
	Root    string
	Names   Names
	Imports map[string]map[string]bool // see Repo
	Header  string                     // kernels/gomps.h
	Routes  string                     // gomps/server/server.go
}

// NewChecker reads what the checks need from the repository at root.
func NewChecker(root string) (*Checker, error) {
	repo, err := ScanGo(root)
	if err != nil {
		return nil, err
	}
	header, err := os.ReadFile(filepath.Join(root, "kernels", "gomps.h"))
	if err != nil {
		return nil, err
	}
	routes, err := os.ReadFile(filepath.Join(root, "gomps", "server", "server.go"))
	if err != nil {
		return nil, err
	}
	return &Checker{Root: root, Names: repo.Names, Imports: repo.Imports, Header: string(header), Routes: string(routes)}, nil
}

// Check returns why tok names nothing that exists, or nil; checked reports
// whether tok has a shape that is checked at all.
func (c *Checker) Check(tok Token) (checked bool, err error) {
	t := tok.Text
	switch {
	case strings.ContainsAny(t, " <>*"):
		if m := command.FindStringSubmatch(t); m != nil {
			return true, c.exists(filepath.Join("cmd", "gomps", m[1]+".go"))
		}
		return false, nil
	case route.MatchString(t):
		if !strings.Contains(c.Routes, " "+t+`"`) {
			return true, fmt.Errorf("route %s is not registered in gomps/server/server.go", t)
		}
		return true, nil
	case cName.MatchString(t):
		if !regexp.MustCompile(`\b` + t + `\b`).MatchString(c.Header) {
			return true, fmt.Errorf("%s is not in kernels/gomps.h", t)
		}
		return true, nil
	case strings.Contains(t, "/") || fileExt.MatchString(t):
		return true, c.exists(t)
	case goName.MatchString(t):
		m := goName.FindStringSubmatch(t)
		set, ok := c.Names[m[1]]
		if !ok {
			return true, fmt.Errorf("no Go package named %s", m[1])
		}
		if !set[m[2]] {
			return true, fmt.Errorf("package %s declares no %s", m[1], m[2])
		}
		return true, nil
	case tok.PackageCell:
		return true, c.exists(t)
	}
	return false, nil
}

func (c *Checker) exists(rel string) error {
	if _, err := os.Stat(filepath.Join(c.Root, filepath.FromSlash(strings.TrimSuffix(rel, "/")))); err != nil {
		return fmt.Errorf("%s does not exist", rel)
	}
	return nil
}

// StrayMentions returns the places under root that name ARCHITECTURE.md
// without its path docs/ARCHITECTURE.md (the page itself and this package
// are not searched).
func StrayMentions(root string) ([]string, error) {
	var out []string
	err := walkFiles(root, "bin", func(path, rel string) error {
		if !fileExt.MatchString(rel) || rel == "docs/ARCHITECTURE.md" || strings.HasPrefix(rel, "tools/doccheck/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Count(line, "ARCHITECTURE.md") > strings.Count(line, "docs/ARCHITECTURE.md") {
				out = append(out, fmt.Sprintf("%s:%d", rel, i+1))
			}
		}
		return nil
	})
	return out, err
}

// Layering returns the imports that go up the Packages table: a package of
// row i that imports one of a row above it. A package belongs to the row
// of the longest package-cell directory that holds it; packages under no
// such directory are not checked.
func (c *Checker) Layering(tokens []Token) []string {
	rowOf := map[string]int{}
	for _, t := range tokens {
		if t.PackageCell {
			rowOf[strings.TrimSuffix(t.Text, "/")] = t.Row
		}
	}
	find := func(dir string) (int, bool) {
		for d := dir; d != "."; d = pathpkg.Dir(d) {
			if r, ok := rowOf[d]; ok {
				return r, true
			}
		}
		return 0, false
	}
	var out []string
	for dir, imports := range c.Imports {
		from, ok := find(dir)
		if !ok {
			continue
		}
		for im := range imports {
			if to, ok := find(im); ok && to < from {
				out = append(out, fmt.Sprintf("%s (row %d) imports %s (row %d)", dir, from, im, to))
			}
		}
	}
	sort.Strings(out)
	return out
}
