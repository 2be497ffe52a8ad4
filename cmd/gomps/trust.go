package main

import (
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
)

// trustUnverifiedFlag is --trust-unverified of the commands that load a
// model (a model id may be downloaded from the Hub).
func trustUnverifiedFlag() cli.Flag {
	return &cli.BoolFlag{Name: "trust-unverified", Usage: "when downloading a model from the Hub, accept files the server names by an etag that is no hash (checked by size only); by default each file must match its sha256 or git sha1", EnvVars: []string{"GOMPS_TRUST_UNVERIFIED"}}
}

// withTrust appends gomps.WithTrustUnverified to opts when the flag is set.
func withTrust(c *cli.Context, opts []gomps.Option) []gomps.Option {
	if c.Bool("trust-unverified") {
		opts = append(opts, gomps.WithTrustUnverified())
	}
	return opts
}
