package ctl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jetai/jetai/admin"
)

func TestPullBar(t *testing.T) {
	for _, c := range []struct {
		terminal bool
		events   []admin.PullEvent
		want     []string
		not      []string
	}{
		{true, []admin.PullEvent{
			{Phase: admin.PullResolve, Message: "resolving hf.co/a/b"},
			{Phase: admin.PullDownload, Done: 50 << 20, Total: 100 << 20, Rate: 10 << 20},
		}, []string{"resolving hf.co/a/b\n", "\r[############------------]  50% 50.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:05"}, nil},
		{false, []admin.PullEvent{
			{Phase: admin.PullDownload, Done: 1 << 20, Total: 100 << 20, Rate: 1 << 20},
			{Phase: admin.PullDownload, Done: 2 << 20, Total: 100 << 20, Rate: 1 << 20},
			{Phase: admin.PullDownload, Done: 3 << 20, Total: 100 << 20, Rate: 1 << 20},
			{Phase: admin.PullVerify, Done: 100 << 20, Total: 100 << 20},
		}, []string{"  1% 1.0 MiB / 100.0 MiB  1.0 MiB/s  ETA 1:39\n", "100% 100.0 MiB / 100.0 MiB  verifying\n"}, []string{"\r", "2.0 MiB /"}},
	} {
		var errb bytes.Buffer
		e := &Env{Stderr: &errb, IsTerminal: c.terminal}
		show, end := pullBar(e)
		for _, ev := range c.events {
			show(ev)
		}
		end()
		out := errb.String()
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("terminal %v: %q lacks %q", c.terminal, out, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(out, w) {
				t.Errorf("terminal %v: %q has %q", c.terminal, out, w)
			}
		}
	}
}
