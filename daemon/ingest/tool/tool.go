// Package tool is the child-process side of package ingest: `jetaid tool
// check FILE` loads a model with the engine and prints its facts as JSON,
// `jetaid tool quantize IN OUT TYPE` quantizes at the lowest CPU priority
// and logs llama.cpp's per-tensor progress on stderr. Like the runner, it
// runs llama.cpp outside the daemon's process: a file that makes llama.cpp
// abort kills only this child.
package tool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/jetai/jetai/daemon/engine"
)

// Main runs one tool command (the arguments after "tool").
func Main(args []string) error {
	if len(args) == 0 {
		return errors.New("tool: want check FILE or quantize IN OUT TYPE")
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			return errors.New("tool check: want FILE")
		}
		engine.SetLogOutput(os.Stderr, false)
		m, err := engine.Load(context.Background(), args[1], engine.LoadOptions{})
		if err != nil {
			return short(err)
		}
		defer m.Close()
		return json.NewEncoder(os.Stdout).Encode(m.Info())
	case "quantize":
		if len(args) != 4 {
			return errors.New("tool quantize: want IN OUT TYPE")
		}
		// Lowest CPU priority: serving goes first.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, 19); err != nil {
			fmt.Fprintln(os.Stderr, "tool quantize: nice:", err)
		}
		// Info lines carry llama.cpp's "[ i/ n] tensor" progress.
		engine.SetLogOutput(os.Stderr, true)
		return short(engine.Quantize(args[1], args[2], args[3]))
	}
	return fmt.Errorf("tool: unknown command %q", args[0])
}

// short drops llama.cpp's lines from an engine error: the tool's llama.cpp
// log goes to stderr, where they are already, just above the error.
func short(err error) error {
	var le *engine.LogError
	if errors.As(err, &le) {
		return errors.New(le.Short())
	}
	return err
}
