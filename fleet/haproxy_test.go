package fleet

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HAProxyBin finds Debian's haproxy (in /usr/sbin, which an ordinary
// user's PATH may lack): the tests skip without it, and fail when CI is
// set (.ci/deps installs it). The multi-node test uses it too.
func HAProxyBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr == nil {
			return "/usr/sbin/haproxy"
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy not found (%v): CI must install Debian's haproxy package (.ci/deps)", err)
		}
		t.Skipf("haproxy not found (%v); apt-get install haproxy to run this test", err)
	}
	return bin
}

var testNodes = []Node{
	{Addr: "127.0.0.2:8000", Models: []string{"story"}, Aliases: map[string][]string{"story": {"gpt2", "tiny"}}},
	{Addr: "127.0.0.3:8000", Models: []string{"chat", "story"}, Aliases: map[string][]string{"story": {"gpt2"}}},
	{Addr: "[::1]:8000", Models: []string{"odd name/with:chars", "chat"}},
}

// TestHAProxyConfig: the config routes each model and alias to the nodes
// that serve it, checks /ready?model, and HAProxy itself accepts it.
func TestHAProxyConfig(t *testing.T) {
	cfg, err := HAProxy(testNodes, Options{Bind: "127.0.0.1:18080", CheckInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for _, want := range []string{
		"option http-buffer-request",
		"retry-on conn-failure",
		"use_backend " + backendName("story") + " if { var(txn.model) -m str 'gpt2' 'story' 'tiny' }",
		"use_backend " + backendName("chat") + " if { var(txn.model) -m str 'chat' }",
		"http-check send meth GET uri /ready?model=odd+name%2Fwith%3Achars",
		"server n_127_0_0_2_8000 127.0.0.2:8000",
		"server n____1__8000 [::1]:8000",
		"default-server check inter 500ms fall 2 rise 2",
		"default_backend any_node",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	// story's backend has nodes 2 and 3, not [::1].
	be := text[strings.Index(text, "\nbackend "+backendName("story")):]
	be = be[:strings.Index(be[1:], "\nbackend ")+1]
	if !strings.Contains(be, "127.0.0.2:8000") || !strings.Contains(be, "127.0.0.3:8000") || strings.Contains(be, "[::1]") {
		t.Errorf("story's backend:\n%s", be)
	}
	if t.Failed() {
		t.Log(text)
	}
	bin := HAProxyBin(t)
	p := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(p, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, text)
	}
}

func TestHAProxyConfigRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		nodes []Node
		want  string
	}{
		{"no nodes", nil, "no nodes"},
		{"twice", []Node{{Addr: "a:1"}, {Addr: "a:1"}}, "listed twice"},
		{"quote", []Node{{Addr: "a:1", Models: []string{"it's"}}}, "holds a quote"},
		{"alias of two", []Node{
			{Addr: "a:1", Models: []string{"x"}, Aliases: map[string][]string{"x": {"fast"}}},
			{Addr: "b:1", Models: []string{"y"}, Aliases: map[string][]string{"y": {"fast"}}},
		}, `"fast" is an alias of both`},
	} {
		if _, err := HAProxy(c.nodes, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A model name that is an alias elsewhere: the model wins.
	cfg, err := HAProxy([]Node{
		{Addr: "a:1", Models: []string{"x"}, Aliases: map[string][]string{"x": {"y"}}},
		{Addr: "b:1", Models: []string{"y"}},
	}, Options{})
	if err != nil || !strings.Contains(string(cfg), "-m str 'x' }") || !strings.Contains(string(cfg), "-m str 'y' }") {
		t.Fatalf("%v\n%s", err, cfg)
	}
}
