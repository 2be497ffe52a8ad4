//go:build !unix

package pairio

import "os"

func lockTemp(*os.File) {}

// abandoned cannot tell without flock: temporary files are left alone.
func abandoned(string) bool { return false }
