// Package version holds the build's version string, set by the Makefile
// through -ldflags.
package version

// Version is the release, e.g. "v0.1.0-3-gabcdef"; "dev" for plain go builds.
var Version = "dev"
