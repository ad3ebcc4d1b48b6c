// Package config owns the jetaid configuration file: its HCL schema, decoding
// into typed structs, the defaults (all in defaults.go), validation that
// reports every problem at once as file:line:col diagnostics (Check is the
// report that --check-config and the admin validate command print), the
// diff between two configurations that a hot reload applies, and watching
// the file for changes (watch.go).
//
// It only reads: the config file (and watches its directory with inotify)
// and, for validation, the model files it names (stat, open, read the
// four-byte GGUF magic). It must not start,
// stop or signal anything, open sockets, or import any daemon package; the
// daemon decides what to do with a Config and a Plan.
package config
