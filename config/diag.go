package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Severity says whether a diagnostic stops the file from being used.
type Severity int

// Severities.
const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// MarshalText renders "error" or "warning".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads "error" or "warning" (clients of the admin socket
// decode diagnostics).
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = Error
	case "warning":
		*s = Warning
	default:
		return fmt.Errorf("unknown severity %q", b)
	}
	return nil
}

// Diagnostic is one problem in a config file. Line and Column are 1-based;
// they are 0 when the problem is with the file as a whole.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Filename string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	// Message is one line a person can act on.
	Message string `json:"message"`
	// Err is the underlying cause when there is one (the file could not
	// be read): errors.Is(diags, fs.ErrNotExist) finds it.
	Err error `json:"-"`
}

// String renders "file:line:col: message" (or "file: message" without a
// position); warnings say so after the position.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Filename)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
	}
	b.WriteString(": ")
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every problem found in a config file, sorted by position. As
// an error it is what Load and Parse return; it holds only errors then.
type Diagnostics []Diagnostic

// Error renders one diagnostic per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the underlying causes, for errors.Is and errors.As.
func (ds Diagnostics) Unwrap() []error {
	var out []error
	for _, d := range ds {
		if d.Err != nil {
			out = append(out, d.Err)
		}
	}
	return out
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

func (ds Diagnostics) errorsOnly() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// fromHCL converts HCL's diagnostics, joining summary and detail into one
// line. hcl's messages are already sentences ("Unsupported argument; An
// argument named "foo" is not expected here.").
func fromHCL(filename string, hd hcl.Diagnostics) Diagnostics {
	var out Diagnostics
	for _, d := range hd {
		sev := Error
		if d.Severity == hcl.DiagWarning {
			sev = Warning
		}
		msg := strings.TrimSuffix(d.Summary, ".")
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		msg = strings.Join(strings.Fields(msg), " ")
		out = append(out, newDiag(sev, filename, d.Subject, msg))
	}
	return out
}

func newDiag(sev Severity, filename string, r *hcl.Range, msg string) Diagnostic {
	d := Diagnostic{Severity: sev, Filename: filename, Message: msg}
	if r != nil {
		if r.Filename != "" {
			d.Filename = r.Filename
		}
		d.Line, d.Column = r.Start.Line, r.Start.Column
	}
	return d
}

func (ds Diagnostics) sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
