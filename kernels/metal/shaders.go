// Package metal embeds the gomps Metal shaders and their shared argument
// header, so a binary carries them and nothing needs to sit next to it at run
// time. The Metal backend (package github.com/gomps/gomps/metal) hands Source
// to Objective-C, which compiles it once per model with fast-math off.
//
// The package builds on every OS: it only holds text. On Linux the same
// .metal files are compiled as C++ and checked by tools/check-metal.sh.
package metal

import (
	"embed"
	"fmt"
	"regexp"
	"strings"
)

//go:embed gomps-args.h gomps-shader.h *.metal
var files embed.FS

// order lists the files of the library in the order they are joined: the
// headers first, then one file per op.
var order = []string{
	"gomps-args.h",
	"gomps-shader.h",
	"embed.metal",
	"layer-norm.metal",
	"masked-softmax.metal",
	"bias-gelu.metal",
}

var (
	localInclude = regexp.MustCompile(`(?m)^[ \t]*#[ \t]*include[ \t]*"[^"]*"[ \t]*$`)
	kernelLine   = regexp.MustCompile(`(?m)^GOMPS_KERNEL\(([a-z0-9_]+), (f32|f16), [a-z]+\)$`)
)

// Source returns the whole shader library as one MSL translation unit: every
// file in order, each local #include "..." line turned into a comment
// (newLibraryWithSource: has no file system to resolve them against; the
// headers are already inlined above their users).
func Source() string {
	var b strings.Builder
	for _, name := range order {
		data, err := files.ReadFile(name)
		if err != nil {
			// The names are fixed at compile time by go:embed; a miss is a bug.
			panic(fmt.Sprintf("metal: shader %q is not embedded: %v", name, err))
		}
		fmt.Fprintf(&b, "// ---- %s ----\n", name)
		b.WriteString(localInclude.ReplaceAllStringFunc(string(data), func(s string) string {
			return "// (inlined) " + strings.TrimSpace(s)
		}))
		b.WriteString("\n")
	}
	return b.String()
}

// Kernels returns the names of the kernels the library instantiates, in
// source order, as <op>_<dtype> (the names the host asks the library for).
func Kernels() []string {
	var names []string
	for _, m := range kernelLine.FindAllStringSubmatch(Source(), -1) {
		names = append(names, m[1]+"_"+m[2])
	}
	return names
}
