package ctl_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
)

// TestExperimentsCommand runs traffic through an experiment on a real
// daemon and reads it back with `jetai-ctl experiments`.
func TestExperimentsCommand(t *testing.T) {
	dir := t.TempDir()
	e := &env{dir: dir, conf: filepath.Join(dir, "jetai.hcl"), sock: filepath.Join(dir, "admin.sock")}
	testdaemon.WriteConfig(t, dir, configText(t, e.sock, `experiment "assistant" {
  variant "a" {
    model  = "stories"
    weight = 3
  }
  variant "b" {
    model  = "second"
    weight = 1
  }
}`))
	td := testdaemon.Start(t, daemon.Options{ConfigPath: e.conf, NoWatch: true})
	for i := range 8 {
		resp, err := http.Post(td.URL+"/inference", "application/json",
			strings.NewReader(fmt.Sprintf(`{"prompt": "Once", "model": "assistant", "user": "u%d", "max_tokens": 4}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	e.run("experiments").want(t, 0, []string{"EXPERIMENT", "assistant", "stories", "second"}, nil)
	r := e.run("experiments", "assistant")
	r.want(t, 0, []string{"experiment assistant: mode split, sticky user", "VERDICT", "not enough data yet", "latency_ms", "a vs b"}, nil)
	var rs []admin.ExperimentReport
	e.run("--json", "experiments", "assistant").json(t, &rs)
	if len(rs) != 1 || rs[0].Variants[0].Requests+rs[0].Variants[1].Requests != 8 || len(rs[0].Comparisons) == 0 {
		t.Fatalf("json: %+v", rs)
	}
	e.run("experiments", "nope").want(t, 1, nil, []string{"no experiment \"nope\""})
}
