package ctl

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

// Model-file commands: import, quantize, cache.

// fileFlags are the flags of import and quantize.
var fileFlags struct {
	name, typ, add string
	verify         bool
}

func init() {
	cmds := []*Command{
		{Name: "import", Args: "FILE", Summary: "check a GGUF model, copy it into the model cache and print a model block", MinArgs: 1, MaxArgs: 1,
			Help: "The daemon checks the file (GGUF layout, architecture, quantisation, a trial load by the engine,\n" +
				"memory at the default context), copies it into cache.dir with its sha256, and prints a `model`\n" +
				"block to paste into the config. FILE must be readable by the daemon's user.\n" +
				"With --add NAME the daemon writes the block itself, as jetai.d/NAME.hcl beside the config\n" +
				"(context: the file's trained context, capped to fit memory.budget), and reloads: the model\n" +
				"serves when the command returns. A NAME the config has already is refused, with where.",
			Flags: func(fs *flag.FlagSet, e *Env) {
				fs.StringVar(&fileFlags.name, "name", "", "cache file `NAME` (default: --add's NAME, else the file's base name)")
				fs.StringVar(&fileFlags.add, "add", "", "also add model `NAME` to the config: writes jetai.d/NAME.hcl and reloads")
			},
			Complete: []string{"files"}, Run: runImport},
		{Name: "quantize", Args: "MODEL", Summary: "write a quantized copy of a configured model into the model cache", MinArgs: 1, MaxArgs: 1,
			Help: "Runs in a separate process at the lowest CPU priority; serving goes on meanwhile and the thermal\n" +
				"policy may pause it. Ctrl-C cancels it and leaves nothing behind. Prints the new file, its size\n" +
				"and a `model` block.\nTypes are llama.cpp's: f16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0 and the like; given\n" +
				"one it does not know, the daemon lists them all.",
			Flags: func(fs *flag.FlagSet, e *Env) {
				fs.StringVar(&fileFlags.typ, "type", "", "quantisation `TYPE`, e.g. q8_0 or q4_k_m (required)")
				fs.StringVar(&fileFlags.name, "name", "", "`NAME` of the new model (default: MODEL-TYPE)")
			},
			Complete: []string{"models"}, Run: runQuantize},
		{Name: "cache", Summary: "list the model cache: files, parked conversations, quantize jobs", MaxArgs: 0,
			Help: "With --verify the daemon hashes every cached model file against its recorded sha256;\n" +
				"a corrupt file no loaded model uses is removed (it is copied again at its next load).\n" +
				"Exit 1 when any file is corrupt.",
			Flags: func(fs *flag.FlagSet, e *Env) {
				fs.BoolVar(&fileFlags.verify, "verify", false, "hash every cached file against its record")
			}, Run: runCache},
	}
	// Before "help", which stays last.
	n := len(commands)
	if n > 0 && commands[n-1].Name == "help" {
		commands = append(commands[:n-1], append(cmds, commands[n-1])...)
	} else {
		commands = append(commands, cmds...)
	}
}

// progressPrinter shows progress on stderr: redrawn in place on a
// terminal, a line every 10% otherwise.
func progressPrinter(e *Env, what string) (func(admin.Progress), func()) {
	lastPct := -1
	shown := false
	return func(p admin.Progress) {
			if p.Total <= 0 {
				return
			}
			pct := int(100 * p.Done / p.Total)
			amount := fmt.Sprintf("%d/%d tensors", p.Done, p.Total)
			if p.Unit == "bytes" {
				amount = bytesize.IEC(uint64(p.Done)) + " of " + bytesize.IEC(uint64(p.Total))
			}
			if e.IsTerminal {
				fmt.Fprintf(e.Stderr, "\r%s %3d%% (%s)   ", what, pct, amount)
				shown = true
			} else if pct/10 != lastPct/10 {
				fmt.Fprintf(e.Stderr, "%s %3d%% (%s)\n", what, pct, amount)
			}
			lastPct = pct
		}, func() {
			if shown {
				fmt.Fprintln(e.Stderr)
			}
		}
}

func printFileResult(e *Env, r admin.FileResult, verb string, took time.Duration) error {
	if e.JSON {
		return printJSON(e.Stdout, r)
	}
	f := r.Facts
	fmt.Fprintf(e.Stdout, "%s %s in %.1fs\n", verb, r.Entry.Path, took.Seconds())
	fmt.Fprintf(e.Stdout, "  size %s, sha256 %s\n", bytesize.IEC(uint64(r.Entry.Size)), r.Entry.SHA256)
	fmt.Fprintf(e.Stdout, "  %s %s, %d layers, trained context %d\n\n", f.Architecture, f.FileType, f.Layers, f.ContextTrain)
	fmt.Fprint(e.Stdout, r.Block)
	return nil
}

func runImport(ctx context.Context, e *Env, args []string) error {
	path, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	show, end := progressPrinter(e, "copying")
	start := time.Now()
	r, err := e.Client.Import(ctx, admin.ImportRequest{Path: path, Name: fileFlags.name, Add: fileFlags.add}, show)
	end()
	if err != nil {
		return err
	}
	if r.DropIn != nil && !e.JSON {
		return printDropIn(e, r, time.Since(start))
	}
	return printFileResult(e, r, "imported", time.Since(start))
}

func runQuantize(ctx context.Context, e *Env, args []string) error {
	if fileFlags.typ == "" {
		return usageErr("give the type: --type q8_0 (or q4_k_m, q6_k, …)")
	}
	show, end := progressPrinter(e, "quantizing")
	start := time.Now()
	r, err := e.Client.Quantize(ctx, admin.QuantizeRequest{Model: args[0], Type: fileFlags.typ, Name: fileFlags.name}, show)
	end()
	if err != nil {
		return err
	}
	return printFileResult(e, r, "quantized", time.Since(start))
}

func runCache(ctx context.Context, e *Env, _ []string) error {
	if fileFlags.verify {
		return runVerify(ctx, e)
	}
	st, err := e.Client.CacheStatus(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, st)
	}
	limit := "no limit"
	if st.MaxSize > 0 {
		limit = bytesize.IEC(uint64(st.MaxSize))
	}
	fmt.Fprintf(e.Stdout, "%s: %s used of %s (%s parked conversations)\n", st.Dir, bytesize.IEC(uint64(st.Used)), limit, bytesize.IEC(uint64(st.ParkedBytes)))
	t := newTable(e.Stdout)
	t.row("FILE", "SIZE", "ORIGIN", "IN USE", "LAST USED", "SOURCE")
	for _, f := range st.Files {
		t.row(f.Name, bytesize.IEC(uint64(f.Size)), f.Origin, fmt.Sprint(f.InUse), f.LastUsed.Local().Format("2006-01-02 15:04"), f.Source)
	}
	t.flush()
	for _, j := range st.Quantizing {
		state := "running"
		if j.Paused {
			state = "paused"
		}
		fmt.Fprintf(e.Stdout, "quantizing %s (%s) from %s: %d/%d tensors, %s\n", j.Name, j.Type, j.Source, j.Done, j.Total, state)
	}
	return nil
}

func runVerify(ctx context.Context, e *Env) error {
	r, err := e.Client.VerifyCache(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		if err := printJSON(e.Stdout, r); err != nil {
			return err
		}
	} else {
		for _, n := range r.OK {
			fmt.Fprintf(e.Stdout, "ok       %s\n", n)
		}
		for _, c := range r.Corrupt {
			what := "kept while a loaded model uses it"
			if c.Removed {
				what = "removed"
			}
			fmt.Fprintf(e.Stdout, "CORRUPT  %s (%s): %s\n", c.Name, what, c.Error)
		}
	}
	if len(r.Corrupt) > 0 {
		return failed()
	}
	return nil
}

// printDropIn reports an import --add: the file, then the drop-in.
func printDropIn(e *Env, r admin.FileResult, took time.Duration) error {
	d := r.DropIn
	fmt.Fprintf(e.Stdout, "imported %s in %.1fs\n", r.Entry.Path, took.Seconds())
	fmt.Fprintf(e.Stdout, "  size %s, sha256 %s\n", bytesize.IEC(uint64(r.Entry.Size)), r.Entry.SHA256)
	fmt.Fprintf(e.Stdout, "added model %s in %s (config generation %d)\n", d.Model, d.File, d.Generation)
	fmt.Fprintf(e.Stdout, "  context: %s; estimated memory %s of the %s budget\n\n", d.Reason, bytesize.IEC(d.EstimateBytes), bytesize.IEC(d.BudgetBytes))
	fmt.Fprint(e.Stdout, d.Content)
	return nil
}
