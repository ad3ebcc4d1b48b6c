package ctl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/ctl"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
)

// TestLoadWhileShedding: while the thermal policy sheds load (a fake Orin
// Nano tree over its hard limit), `jetai-ctl load` gets the pool's own
// answer, thermal_shed with a Retry-After, and exits 4 (retry later), not
// a 500 "internal" and exit 1.
func TestLoadWhileShedding(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join(filepath.Dir(file), "..", "testdata", "platform", "orin-nano"))); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(root, "sys/class/thermal/thermal_zone8/temp") // tj-thermal
	if err := os.WriteFile(temp, []byte("95000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock, conf := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "jetai.hcl")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
server {
  admin_socket = %q
}
cache {
  dir = "cache"
}
thermal {
  soft_limit    = 80
  hard_limit    = 90
  poll_interval = "20ms"
}
model "cool" {
  path    = %q
  context = 256
  threads = 1
}
`, sock, testmodel.Path(t))), 0o644)
	testdaemon.Start(t, daemon.Options{ConfigPath: conf, PlatformRoot: root, NoWatch: true})
	ctx := context.Background()
	c := admin.NewClient(sock)
	defer c.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s, err := c.Status(ctx)
		if err == nil && s.Platform != nil && s.Platform.Throttle == "shed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never shed: %+v %v", s.Platform, err)
		}
	}
	e := &env{sock: sock}
	for _, wait := range [][]string{{"--wait"}, nil} {
		r := e.run(append([]string{"load", "cool"}, wait...)...)
		r.want(t, ctl.ExitRetry, nil, []string{"jetai-ctl load:", "too hot", "thermal_shed", "retry after 30s"})
	}
	// The admin answer itself: the pool's code, status and Retry-After.
	_, err := c.Load(ctx, "cool", true)
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "thermal_shed" || ae.RetryAfter != 30*time.Second {
		t.Fatalf("admin load while shedding: %#v", err)
	}
	if !strings.Contains(ae.Message, "thermal state shed") {
		t.Fatalf("admin load while shedding: %q", ae.Message)
	}
}
