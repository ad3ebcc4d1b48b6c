package config

import (
	"errors"
	"fmt"
	"strings"
)

// Report is the result of checking a config file: what `jetaid
// --check-config FILE` prints and what the admin socket's validate command
// answers. Both call Check, so they agree.
type Report struct {
	Path string `json:"path"`
	// OK says the file is usable: it parses and validates (warnings allowed).
	OK bool `json:"ok"`
	// Hash is the hex sha256 of the file's bytes; empty when it was not read.
	Hash string `json:"hash,omitempty"`
	// Diagnostics are every error and warning, one "file:line:col: message"
	// line each, in file order.
	Diagnostics []string `json:"diagnostics"`
	// Summary facts of a usable file.
	Models       int    `json:"models"`
	Listen       string `json:"listen,omitempty"`
	DefaultModel string `json:"default_model,omitempty"`

	// Config is the checked config when OK.
	Config *Config `json:"-"`
}

// Check loads and validates the config file at path without using it.
func Check(path string) Report {
	return report(path, func() (*Config, error) { return Load(path) })
}

// CheckSource validates a config file's contents, named filename (for
// diagnostics and relative paths), with the drop-ins beside filename on
// disk, as Check does.
func CheckSource(src []byte, filename string) Report {
	return report(filename, func() (*Config, error) { return LoadSource(src, filename) })
}

func report(path string, load func() (*Config, error)) Report {
	r := Report{Path: path, Diagnostics: []string{}}
	cfg, err := load()
	if err != nil {
		var ds Diagnostics
		if errors.As(err, &ds) {
			r.Diagnostics = ds.Strings()
		} else {
			r.Diagnostics = []string{path + ": " + err.Error()}
		}
		return r
	}
	r.OK, r.Config, r.Hash = true, cfg, cfg.Hash
	r.Diagnostics = cfg.Warnings.Strings()
	r.Models, r.Listen, r.DefaultModel = len(cfg.Models), cfg.Server.Listen, cfg.Router.DefaultModel
	return r
}

// String is the report as --check-config prints it: the diagnostics, then a
// last line that says whether the file is usable.
func (r Report) String() string {
	var b strings.Builder
	for _, d := range r.Diagnostics {
		b.WriteString(d + "\n")
	}
	if !r.OK {
		fmt.Fprintf(&b, "%s: not usable\n", r.Path)
	} else {
		fmt.Fprintf(&b, "%s: ok (%d models, listen %s, default model %q)\n", r.Path, r.Models, r.Listen, r.DefaultModel)
	}
	return b.String()
}

// Strings renders each diagnostic with String.
func (ds Diagnostics) Strings() []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
