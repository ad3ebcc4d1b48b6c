package ctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

// Local-model commands: ls, rm (and import --add, in modelfiles.go).

func init() {
	cmds := []*Command{
		{Name: "ls", Summary: "list local model files: size, quantization, parameters, source, the models that use them", MaxArgs: 0,
			Help: "Lists the files in the model cache (imported, quantized, pulled) and the files the config's\n" +
				"models name, read from their GGUF headers. USED BY names each model that uses the file,\n" +
				"with its state; a * marks a model of a drop-in file (jetai.d/), which `jetai-ctl rm` may remove.",
			Run: runLs},
		{Name: "rm", Args: "NAME|FILE", Summary: "unload a model, remove its drop-in and its file", MinArgs: 1, MaxArgs: 1,
			Help: "NAME is a model name or alias, or the name of a file in the model cache; FILE a model file's path.\n" +
				"Every model that uses the file is unloaded (after its running requests finish), its drop-in\n" +
				"(jetai.d/NAME.hcl) deleted and the config reloaded; then the file is deleted from the model cache.\n" +
				"A model or file that the main config file names is refused, with where (file:line:col): that\n" +
				"block is yours to change. A file outside the model cache is left in place.",
			Complete: []string{"models"}, Run: runRm},
	}
	n := len(commands)
	if n > 0 && commands[n-1].Name == "help" {
		commands = append(commands[:n-1], append(cmds, commands[n-1])...)
	} else {
		commands = append(commands, cmds...)
	}
}

func runLs(ctx context.Context, e *Env, _ []string) error {
	res, err := e.Client.LocalFiles(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, res)
	}
	if len(res.Files) == 0 {
		fmt.Fprintf(e.Stdout, "no model files (model cache %s); add one with: jetai-ctl import FILE --add NAME\n", res.CacheDir)
		return nil
	}
	t := newTable(e.Stdout)
	t.row("FILE", "SIZE", "QUANT", "PARAMS", "ARCH", "SOURCE", "USED BY")
	for _, f := range res.Files {
		var used []string
		for _, m := range f.Models {
			s := m.Name
			if m.DropIn {
				s += "*"
			}
			if m.State != "" {
				s += " (" + m.State + ")"
			}
			used = append(used, s)
		}
		source := f.Source
		if source == "" {
			source = f.Origin
		}
		quant, params, arch := dash(f.Quant), "-", dash(f.Architecture)
		if f.Parameters > 0 {
			params = humanCount(f.Parameters)
		}
		if f.Error != "" {
			arch = "error: " + f.Error
		}
		t.row(shortPath(f.Path, res.CacheDir), bytesize.IEC(uint64(f.Size)), quant, params, arch, dash(source), dash(strings.Join(used, ", ")))
	}
	t.flush()
	if res.CacheDir != "" {
		fmt.Fprintf(e.Stdout, "(files under %s shown relative to it; * = defined in %s)\n", filepath.Join(res.CacheDir, "models"), res.DropInDir)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortPath shows a cached file by its name under the cache's models/.
func shortPath(p, cacheDir string) string {
	if cacheDir != "" {
		if rel, err := filepath.Rel(filepath.Join(cacheDir, "models"), p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func runRm(ctx context.Context, e *Env, args []string) error {
	target := args[0]
	// A path the caller gives is theirs: the daemon does not share the
	// working directory.
	if strings.ContainsRune(target, '/') || (strings.HasSuffix(target, ".gguf") && fileHere(target)) {
		if abs, err := filepath.Abs(target); err == nil {
			target = abs
		}
	}
	res, err := e.Client.RemoveModel(ctx, admin.RemoveRequest{Target: target})
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, res)
	}
	for _, m := range res.Models {
		fmt.Fprintf(e.Stdout, "unloaded and removed model %s\n", m)
	}
	for _, f := range res.DropIns {
		fmt.Fprintf(e.Stdout, "deleted drop-in %s\n", f)
	}
	if r := res.Reload; r != nil && r.Changed {
		fmt.Fprintf(e.Stdout, "config generation %d applied\n", r.Generation)
	}
	for _, f := range res.Files {
		fmt.Fprintf(e.Stdout, "deleted %s\n", f)
	}
	for _, k := range res.Kept {
		fmt.Fprintf(e.Stdout, "kept %s\n", k)
	}
	return nil
}

func fileHere(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
