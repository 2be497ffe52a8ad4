//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package weights

import "os"

// mapFile never maps on this platform: reads go through io.ReaderAt.
func mapFile(*os.File, int64) (blob, bool) { return nil, false }
