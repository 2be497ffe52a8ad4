package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
)

// baseVersion is the release this source tree leads to; a build that is not
// stamped at link time reports it with a "-devel" suffix.
const baseVersion = "v0.1.0"

// noVCS is the commit of a binary that carries no commit: neither stamped at
// link time nor read from the VCS data Go embeds (go build -buildvcs=false,
// a source tarball, GOFLAGS=-buildvcs=false).
const noVCS = "unknown (built without VCS data; make build, make install and tools/setup.sh stamp it)"

// Set at link time by tools/lib/ldflags.sh (make build, make install,
// tools/setup.sh):
//
//	go build -ldflags "$(bash tools/lib/ldflags.sh)" ./cmd/gomps
//
// When unset they come from the build information Go embeds in the binary.
var (
	version  string
	commit   string
	modified string // "true" when the work tree had uncommitted changes
)

// buildVersion describes this binary.
type buildVersion struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	// The native backend on this machine: its ISA under the ceiling
	// (ONEDNN_MAX_CPU_ISA on the CPU) and the precisions it runs natively,
	// or why it cannot run here.
	Backend      string   `json:"backend"`
	ISA          string   `json:"isa,omitempty"`
	Precisions   []string `json:"precisions"`
	BackendError string   `json:"backend_error,omitempty"`
}

// readVersion combines the link-time values with debug.ReadBuildInfo.
func readVersion() buildVersion {
	v := buildVersion{Version: version, Commit: commit, Modified: modified == "true", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = v.Modified || (commit == "" && s.Value == "true")
			}
		}
	}
	if v.Version == "" {
		v.Version = baseVersion + "-devel"
	}
	if v.Commit == "" {
		v.Commit = noVCS
	}
	bi, err := gomps.Backend()
	v.Backend, v.ISA, v.Precisions = bi.Name, bi.ISA, bi.Precisions
	if err != nil {
		v.BackendError = err.Error()
	}
	return v
}

func init() { register(newVersionCommand()) }

func newVersionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the gomps version, commit, Go version, platform and the backend's ISA and native precisions",
		Description: `The version and commit are stamped at link time by make build, make install
and tools/setup.sh (tools/lib/ldflags.sh: the nearest v* tag, else ` + baseVersion + `-devel;
the commit; whether the work tree had uncommitted changes). A plain go build reads
them from the build information Go embeds (module version, VCS revision); a build
without VCS data reports ` + baseVersion + `-devel and says its commit is unknown.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object", EnvVars: []string{"GOMPS_JSON"}},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q", c.Args().First())
			}
			v := readVersion()
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(v)
			}
			mod := ""
			if v.Modified {
				mod = " (modified)"
			}
			backend := fmt.Sprintf("%s %s, native precisions %s", v.Backend, v.ISA, strings.Join(v.Precisions, ", "))
			if v.BackendError != "" {
				backend = fmt.Sprintf("%s %s: cannot run here: %s", v.Backend, v.ISA, v.BackendError)
			}
			_, err := fmt.Fprintf(c.App.Writer, "gomps %s\ncommit  %s%s\ngo      %s\nos/arch %s/%s\nbackend %s\n",
				v.Version, v.Commit, mod, v.Go, v.OS, v.Arch, backend)
			return err
		},
	}
}
