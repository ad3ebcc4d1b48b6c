// Package config owns the jetaid configuration file: its HCL schema, decoding
// into typed structs, the defaults (all in defaults.go), validation that
// reports every problem at once as file:line:col diagnostics, and the diff
// between two configurations that a hot reload applies.
//
// It only reads: the config file and, for validation, the model files it
// names (stat, open, read the four-byte GGUF magic). It must not start,
// stop or signal anything, open sockets, or import any daemon package; the
// daemon decides what to do with a Config and a Plan.
package config
