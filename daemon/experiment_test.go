package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/experiment"
)

// expAnswer is what the experiment tests read of an /inference answer.
type expAnswer struct {
	status    int
	id        string
	model     string
	selection map[string]any
}

func (e *reloadEnv) inferAs(model, user string) expAnswer {
	e.t.Helper()
	resp, err := http.Post(e.base+"/inference", "application/json",
		strings.NewReader(fmt.Sprintf(`{"prompt": "Once upon a time", "model": %q, "user": %q, "max_length": 4}`, model, user)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		ID        string         `json:"id"`
		Model     string         `json:"model"`
		Selection map[string]any `json:"selection"`
	}
	json.Unmarshal(b, &v)
	if resp.StatusCode != 200 {
		e.t.Logf("%s", b)
	}
	return expAnswer{resp.StatusCode, v.ID, v.Model, v.Selection}
}

func experimentBlock(wa, wb int) string {
	return fmt.Sprintf(`experiment "assistant" {
  variant "a" {
    model  = "qa"
    weight = %d
  }
  variant "b" {
    model  = "qb"
    weight = %d
  }
}
`, wa, wb)
}

// TestExperimentFallback: the variant most users are assigned to names a
// model whose file is missing; their requests are served by the other
// variant, and the answer says so.
func TestExperimentFallback(t *testing.T) {
	var missing string
	e := startReload(t, func() string {
		missing = filepath.Join(t.TempDir(), "gone.gguf")
		return model("qa", "") + fmt.Sprintf("model \"qb\" {\n  path = %q\n}\n", missing) + experimentBlock(1, 1000)
	}, false)
	sawFallback := false
	for i := range 20 {
		a := e.inferAs("assistant", fmt.Sprint("user-", i))
		if a.status != 200 || a.model != "qa" || a.selection["mode"] != "experiment" || a.selection["experiment"] != "assistant" || a.selection["variant"] != "a" {
			t.Fatalf("request %d: %+v", i, a)
		}
		if a.selection["fell_back"] == true {
			sawFallback = true
			if r := a.selection["reason"].(string); !strings.Contains(r, `variant "b"`) || !strings.Contains(r, "fell back") {
				t.Fatalf("reason %q", r)
			}
		}
	}
	if !sawFallback {
		t.Fatal("no request was assigned to the missing variant (weights 1:1000)")
	}
	// The figures: a served everything, some of it for b.
	resp, err := http.Get(e.base + "/performance")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var perf struct {
		Experiments []experiment.Report `json:"experiments"`
	}
	json.NewDecoder(resp.Body).Decode(&perf)
	if len(perf.Experiments) != 1 || perf.Experiments[0].Variants[0].Requests != 20 || perf.Experiments[0].Variants[0].FellBack == 0 {
		t.Fatalf("performance: %+v", perf.Experiments)
	}
}

// TestExperimentReloadWeights: requests run without pause while a reload
// turns the weights from 90/10 to 10/90; none fails, and afterwards users
// are assigned by the new weights (as experiment.Assign computes them).
func TestExperimentReloadWeights(t *testing.T) {
	wa, wb := 90, 10
	e := startReload(t, func() string { return model("qa", "") + model("qb", "") + experimentBlock(wa, wb) }, false)
	var failed, sent atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if a := e.inferAs("assistant", fmt.Sprintf("w%d-%d", w, i)); a.status != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	e.waitFor("traffic", func() bool { return sent.Load() > 10 })
	wa, wb = 10, 90
	e.write(model("qa", "") + model("qb", "") + experimentBlock(wa, wb))
	res := e.d.Reload(context.Background(), "test")
	if !res.OK || len(res.Plan.Live) != 1 || res.Plan.Live[0].Field != "experiments" || len(res.Plan.Restarted) != 0 {
		t.Fatalf("reload: %+v", res)
	}
	n := sent.Load()
	e.waitFor("traffic after the reload", func() bool { return sent.Load() > n+10 })
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across the reload", failed.Load(), sent.Load())
	}
	cfg := &config.Experiment{Name: "assistant", Variants: []config.Variant{{Name: "a", Model: "qa", Weight: 10}, {Name: "b", Model: "qb", Weight: 90}}}
	for i := range 10 {
		user := fmt.Sprint("after-", i)
		want := cfg.Variants[experiment.Assign(cfg, "user:"+user)[0]].Name
		if a := e.inferAs("assistant", user); a.selection["variant"] != want {
			t.Fatalf("user %s: variant %v, want %s", user, a.selection["variant"], want)
		}
	}
}

// TestFeedback: an experiment's answer has an id that POST /feedback
// rates once; unknown ids are 404.
func TestFeedback(t *testing.T) {
	e := startReload(t, func() string { return model("qa", "") + model("qb", "") + experimentBlock(1, 1) }, false)
	a := e.inferAs("assistant", "u1")
	if a.status != 200 || !strings.HasPrefix(a.id, "inf-") {
		t.Fatalf("answer: %+v", a)
	}
	post := func(body string) (int, string) {
		resp, err := http.Post(e.base+"/feedback", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post(fmt.Sprintf(`{"id": %q, "thumbs": "up", "score": 5}`, a.id)); code != 200 || !strings.Contains(b, `"variant":"`+a.selection["variant"].(string)+`"`) {
		t.Fatalf("feedback: %d %s", code, b)
	}
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{fmt.Sprintf(`{"id": %q, "thumbs": "down"}`, a.id), 409, "feedback_exists"},
		{`{"id": "inf-nope", "thumbs": "up"}`, 404, "not_found"},
		{`{"id": "x"}`, 400, "invalid_request"},
		{`{"id": "x", "thumbs": "sideways"}`, 400, "invalid_request"},
	} {
		if code, b := post(tc.body); code != tc.code || !strings.Contains(b, tc.want) {
			t.Errorf("%s: %d %s", tc.body, code, b)
		}
	}
}

// TestExperimentShadow: in shadow mode the first variant answers every
// request; the second runs copies whose answers nobody sees, and a shadow
// whose model cannot load never fails the primary.
func TestExperimentShadow(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone.gguf")
	e := startReload(t, func() string {
		return model("qa", "") + model("qb", "") + fmt.Sprintf("model \"qc\" {\n  path = %q\n}\n", missing) + `experiment "shadowed" {
  mode = "shadow"
  variant "live" { model = "qa" }
  variant "candidate" { model = "qb" }
  variant "broken" { model = "qc" }
}
`
	}, false)
	for i := range 6 {
		a := e.inferAs("shadowed", fmt.Sprint("u", i))
		if a.status != 200 || a.selection["variant"] != "live" || a.model != "qa" {
			t.Fatalf("request %d: %+v", i, a)
		}
	}
	var rep experiment.Report
	e.waitFor("shadow copies", func() bool {
		resp, err := http.Get(e.base + "/performance")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var perf struct {
			Experiments []experiment.Report `json:"experiments"`
		}
		json.NewDecoder(resp.Body).Decode(&perf)
		if len(perf.Experiments) == 1 {
			rep = perf.Experiments[0]
		}
		return len(rep.Variants) == 3 && rep.Variants[1].ShadowRuns > 0
	})
	if rep.Variants[0].Requests != 6 || rep.Variants[1].Requests != 0 || rep.Variants[2].ShadowRuns != 0 || rep.ShadowSkipped == 0 {
		t.Fatalf("report: %+v", rep)
	}
}
