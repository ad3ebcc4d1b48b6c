package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

// The pull command: the daemon downloads, this shows it.

var pullFlags struct {
	add                   string
	cancel, discard, list bool
}

func init() {
	cmds := []*Command{
		{Name: "pull", Args: "SOURCE", Summary: "download a model from Hugging Face or the Ollama registry into the model cache", MinArgs: 0, MaxArgs: 1,
			Help: "SOURCE is one of:\n" +
				"  hf.co/OWNER/REPO[:QUANT]    a GGUF repo; QUANT (e.g. Q4_K_M, q8_0) matches file names case-insensitively;\n" +
				"                              without it Q4_K_M, else the closest quant (the pick is printed)\n" +
				"  hf://OWNER/REPO[:QUANT], OWNER/REPO:QUANT   the same\n" +
				"  hf.co/OWNER/REPO/FILE.gguf  one file\n" +
				"  ollama:NAME[:TAG]           a model of the Ollama registry, e.g. ollama:llama3.2:1b\n" +
				"Every part of a split model comes, and a repo's mmproj file too. jetaid downloads into cache.dir:\n" +
				"free space is checked first, a cut link is resumed (HTTP Range), the sha256 is checked against the\n" +
				"hub's before the file is usable. Ctrl-C stops watching, not the download; --cancel stops it, and\n" +
				"the next pull of the same source resumes where it stopped (--discard deletes the partial file).\n" +
				"--add NAME then writes jetai.d/NAME.hcl beside the config (a model block: context from the model's\n" +
				"trained context, capped to fit memory.budget) and reloads; an existing NAME is refused.\n" +
				"Gated repos want a token: HF_TOKEN in jetai-ctl's environment (sent to jetaid over the admin\n" +
				"socket), HF_TOKEN in jetaid's, or pull { hf_token_file = PATH } in the config.\n" +
				"With --json, the progress events and the result are NDJSON lines on stdout.",
			Flags: func(fs *flag.FlagSet, e *Env) {
				fs.StringVar(&pullFlags.add, "add", "", "after the download, add the model to the config as `NAME` (jetai.d/NAME.hcl)")
				fs.BoolVar(&pullFlags.cancel, "cancel", false, "cancel the running pull of SOURCE")
				fs.BoolVar(&pullFlags.discard, "discard", false, "with --cancel: also delete the partial download")
				fs.BoolVar(&pullFlags.list, "list", false, "list the running pulls")
			}, Run: runPull},
	}
	n := len(commands)
	if n > 0 && commands[n-1].Name == "help" {
		commands = append(commands[:n-1], append(cmds, commands[n-1])...)
	} else {
		commands = append(commands, cmds...)
	}
}

func runPull(ctx context.Context, e *Env, args []string) error {
	f := pullFlags
	switch {
	case f.list:
		return runPullList(ctx, e)
	case len(args) == 0:
		return usageErr("give the source, e.g. jetai-ctl pull hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
	case f.discard && !f.cancel:
		return usageErr("--discard goes with --cancel")
	case f.cancel:
		r, err := e.Client.CancelPull(ctx, admin.PullCancelRequest{Source: args[0], Discard: f.discard})
		if err != nil {
			return err
		}
		if e.JSON {
			return printJSON(e.Stdout, r)
		}
		for _, k := range r.Canceled {
			fmt.Fprintf(e.Stdout, "canceled: %s\n", k)
		}
		if f.discard {
			fmt.Fprintln(e.Stdout, "partial downloads deleted")
		} else {
			fmt.Fprintln(e.Stdout, "the partial download stays; pulling the same source again resumes it")
		}
		return nil
	}
	req := admin.PullRequest{Source: args[0], Add: f.add, HFToken: os.Getenv("HF_TOKEN")}
	var show func(admin.PullEvent)
	end := func() {}
	if e.JSON {
		show = func(ev admin.PullEvent) { printNDJSON(e, admin.PullFrame{Event: &ev}) }
	} else {
		show, end = pullBar(e)
	}
	res, err := e.Client.Pull(ctx, req, show)
	end()
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			fmt.Fprintf(e.Stderr, "detached: jetaid goes on downloading %s.\n  watch it again: jetai-ctl pull %s\n  stop it:        jetai-ctl pull --cancel %s\n", args[0], args[0], args[0])
			return &exitError{code: ExitFailed}
		}
		var ae *admin.APIError
		if e.JSON && errors.As(err, &ae) {
			printNDJSON(e, admin.PullFrame{Error: &admin.Error{Code: ae.Code, Message: ae.Message}})
		}
		return err
	}
	if e.JSON {
		printNDJSON(e, admin.PullFrame{Result: &res})
		return nil
	}
	printPullResult(e, res)
	return nil
}

func printNDJSON(e *Env, v any) {
	b, _ := jsonLine(v)
	e.Stdout.Write(b)
}

func printPullResult(e *Env, r admin.PullResult) {
	if r.Note != "" {
		fmt.Fprintf(e.Stdout, "note: %s\n", r.Note)
	}
	var total int64
	for _, f := range r.Files {
		total += f.Size
		how := fmt.Sprintf("downloaded %s", bytesize.IEC(uint64(f.Fetched)))
		switch {
		case f.Cached:
			how = "in the cache already"
		case f.Resumed > 0:
			how += fmt.Sprintf(", resumed after %s", bytesize.IEC(uint64(f.Resumed)))
		}
		fmt.Fprintf(e.Stdout, "%-6s %s\n       %s, sha256 %s (verified), %s\n", f.Role, f.Path, bytesize.IEC(uint64(f.Size)), f.SHA256, how)
	}
	rate := ""
	if r.Seconds > 0 && r.Fetched > 0 {
		rate = fmt.Sprintf(", %s/s", bytesize.IEC(uint64(float64(r.Fetched)/r.Seconds)))
	}
	fmt.Fprintf(e.Stdout, "pulled %s: %d file(s), %s in %.1fs%s\n", r.Source, len(r.Files), bytesize.IEC(uint64(total)), r.Seconds, rate)
	if r.DropIn == "" {
		if len(r.Files) > 0 {
			fmt.Fprintf(e.Stdout, "to serve it: jetai-ctl pull %s --add NAME (or a model block with path = %q)\n", r.Source, r.Files[0].Path)
		}
		return
	}
	fmt.Fprintf(e.Stdout, "added model %s in %s (config generation %d); it loads at its first request\n", r.Model, r.DropIn, r.Generation)
	if r.Context != "" {
		fmt.Fprintf(e.Stdout, "  context: %s\n", r.Context)
	}
	fmt.Fprintf(e.Stdout, "\n%s", r.Block)
}

// pullBar draws a progress bar on stderr: in place on a terminal, a line
// every 10% otherwise.
func pullBar(e *Env) (func(admin.PullEvent), func()) {
	shown, lastPct, lastPhase := false, -1, ""
	return func(ev admin.PullEvent) {
			if ev.Total <= 0 {
				if ev.Message != "" && ev.Phase != lastPhase {
					fmt.Fprintf(e.Stderr, "%s\n", ev.Message)
				}
				lastPhase = ev.Phase
				return
			}
			pct := int(100 * ev.Done / ev.Total)
			line := fmt.Sprintf("%s %3d%% %s / %s", bar(ev.Done, ev.Total, 24), pct, bytesize.IEC(uint64(ev.Done)), bytesize.IEC(uint64(ev.Total)))
			switch {
			case ev.Phase == admin.PullDownload && ev.Rate > 0:
				line += fmt.Sprintf("  %s/s  ETA %s", bytesize.IEC(uint64(ev.Rate)), eta(float64(ev.Total-ev.Done)/ev.Rate))
			case ev.Phase == admin.PullVerify:
				line += "  verifying"
			case ev.Phase == admin.PullAdd:
				line += "  adding to the config"
			}
			if e.IsTerminal {
				fmt.Fprintf(e.Stderr, "\r%-90s", line)
				shown = true
			} else if pct/10 != lastPct/10 || ev.Phase != lastPhase {
				fmt.Fprintln(e.Stderr, line)
			}
			lastPct, lastPhase = pct, ev.Phase
		}, func() {
			if shown {
				fmt.Fprintln(e.Stderr)
			}
		}
}

func bar(done, total int64, width int) string {
	n := int(int64(width) * done / max(total, 1))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func eta(s float64) string {
	if s < 0 || s > 100*3600 {
		return "?"
	}
	d := time.Duration(s) * time.Second
	if d >= time.Hour {
		return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func runPullList(ctx context.Context, e *Env) error {
	ps, err := e.Client.Pulls(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, ps)
	}
	if len(ps) == 0 {
		fmt.Fprintln(e.Stdout, "no pulls running")
		return nil
	}
	for _, p := range ps {
		pct := 0
		if p.Total > 0 {
			pct = int(100 * p.Done / p.Total)
		}
		fmt.Fprintf(e.Stdout, "%-60s %-8s %3d%% %s / %s  %s/s  since %s\n", p.Key, p.Phase, pct, bytesize.IEC(uint64(p.Done)), bytesize.IEC(uint64(p.Total)),
			bytesize.IEC(uint64(p.Rate)), p.Started.Local().Format("15:04:05"))
	}
	return nil
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}
