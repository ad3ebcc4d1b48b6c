package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeRootFS writes a tiny root file system tar, as rootfs.sh's would look.
func fakeRootFS(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, typ byte, mode int64, data string) {
		h := &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: int64(len(data)), ModTime: time.Now(), Uname: "builder"}
		if typ == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	add("./", tar.TypeDir, 0o755, "")
	add("./etc/", tar.TypeDir, 0o755, "")
	add("./etc/passwd", tar.TypeReg, 0o644, "root:x:0:0:root:/root:/bin/bash\n")
	add("./etc/group", tar.TypeReg, 0o644, "root:x:0:\n")
	add("./tmp/", tar.TypeDir, 0o1777, "")
	tw.Close()
	f.Close()
	return p
}

func fakeBin(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, b := range []string{"jetaid", "jetai-ctl"} {
		if err := os.WriteFile(filepath.Join(d, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func sampleConfig(t *testing.T) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testOptions(t *testing.T, rootfs, bin string, created time.Time) Options {
	t.Helper()
	sample := sampleConfig(t)
	cfg, err := ContainerConfig(sample)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Version: "1.2.3", Revision: "abc", Source: "https://github.com/jetai/jetai", Licenses: "MIT",
		Created: created, Config: cfg, Sample: sample,
		ManPages: map[string][]byte{"man8/jetaid.8.gz": []byte("page")},
		Arches:   []Arch{{Arch: "amd64", RootFS: rootfs, Bin: bin}, {Arch: "arm64", RootFS: rootfs, Bin: bin}}}
}

// TestReproducible builds the image twice from the same inputs (the base
// tar's own times and user names differ from what goes in): the index
// digests are equal; another Created gives another digest. The layout and
// the docker archive read back with the config the image promises.
func TestTag(t *testing.T) {
	if got := Tag("0.3.0~git20261202.4462507+dirty"); got != "0.3.0-git20261202.4462507-dirty" {
		t.Fatalf("Tag: %q", got)
	}
}

func TestReproducible(t *testing.T) {
	rootfs, bin := fakeRootFS(t), fakeBin(t)
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	digest := func(o Options) v1.Hash {
		idx, _, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := digest(testOptions(t, rootfs, bin, at))
	time.Sleep(1100 * time.Millisecond) // a build that leaked the clock would differ now
	if b := digest(testOptions(t, rootfs, bin, at)); a != b {
		t.Fatalf("two builds of the same inputs: %s and %s", a, b)
	}
	if c := digest(testOptions(t, rootfs, bin, at.Add(time.Second))); c == a {
		t.Fatal("another Created gave the same digest")
	}

	idx, images, err := Build(testOptions(t, rootfs, bin, at))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, "1.2.3", idx); err != nil {
		t.Fatal(err)
	}
	back, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := back.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout index: %d entries, want the multi-arch index", len(im.Manifests))
	}
	inner, err := back.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	mm, _ := inner.IndexManifest()
	var plats []string
	for _, m := range mm.Manifests {
		plats = append(plats, m.Platform.String())
	}
	if strings.Join(plats, " ") != "linux/amd64 linux/arm64/v8" {
		t.Fatalf("platforms %v", plats)
	}
	cf, err := images["arm64"].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "10001:10001" || strings.Join(c.Entrypoint, " ") != "/usr/bin/jetaid" || strings.Join(c.Cmd, " ") != "--config /etc/jetai/jetai.hcl" ||
		c.Labels["org.opencontainers.image.version"] != "1.2.3" || c.Labels["org.opencontainers.image.licenses"] != "MIT" ||
		c.Labels["org.opencontainers.image.source"] == "" || cf.Architecture != "arm64" || !cf.Created.Time.Equal(at) {
		t.Fatalf("config: %+v", cf)
	}
	for _, v := range []string{DataDir, CacheDir, RunDir, "/tmp"} {
		if _, ok := c.Volumes[v]; !ok {
			t.Errorf("no volume %s", v)
		}
	}
	arch := filepath.Join(t.TempDir(), "jetai.tar")
	if err := WriteDockerArchive(arch, "1.2.3", images["amd64"]); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(arch, nil)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := images["amd64"].Digest()
	if d1 != d2 {
		t.Logf("docker archive image digest %s, built %s (docker media types re-encode the manifest)", d1, d2)
	}
	files := unpack(t, images["amd64"], t.TempDir())
	for _, want := range []string{"usr/bin/jetaid", "etc/jetai/jetai.hcl", "usr/share/man/man8/jetaid.8.gz", "usr/share/doc/jetai/jetai.hcl.sample"} {
		if _, err := os.Lstat(filepath.Join(files, want)); err != nil {
			t.Errorf("image lacks %s", want)
		}
	}
	pw, _ := os.ReadFile(filepath.Join(files, "etc/passwd"))
	if !strings.Contains(string(pw), "root:x:0:0") || !strings.Contains(string(pw), "jetai:x:10001:10001:") {
		t.Errorf("/etc/passwd:\n%s", pw)
	}
	conf, _ := os.ReadFile(filepath.Join(files, "etc/jetai/jetai.hcl"))
	if !strings.Contains(string(conf), `log_format = "json"`) || !strings.Contains(string(conf), `listen = "0.0.0.0:8000"`) {
		t.Errorf("the image's config is not the container's")
	}
}

// unpack extracts img's layers in order into dir, as a container runtime
// does: a ".wh.NAME" entry deletes NAME from the layers below, and
// ".wh..wh..opq" empties its directory. Owners are kept when running as
// root.
func unpack(t *testing.T, img v1.Image, dir string) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			name := filepath.Clean("/" + h.Name)[1:]
			if name == "" {
				continue
			}
			target := filepath.Join(dir, name)
			base, parent := filepath.Base(name), filepath.Dir(target)
			if base == ".wh..wh..opq" {
				ents, _ := os.ReadDir(parent)
				for _, e := range ents {
					os.RemoveAll(filepath.Join(parent, e.Name()))
				}
				continue
			}
			if strings.HasPrefix(base, ".wh.") {
				os.RemoveAll(filepath.Join(parent, strings.TrimPrefix(base, ".wh.")))
				continue
			}
			if fi, err := os.Lstat(target); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
				os.RemoveAll(target)
			}
			os.MkdirAll(parent, 0o755)
			mode := os.FileMode(h.Mode & 0o7777)
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(target, mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(target, mode|modeBits(h.Mode))
			case tar.TypeReg:
				f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(f, tr); err != nil {
					t.Fatal(err)
				}
				f.Close()
				os.Chmod(target, mode|modeBits(h.Mode))
			case tar.TypeSymlink:
				if err := os.Symlink(h.Linkname, target); err != nil {
					t.Fatal(err)
				}
			case tar.TypeLink:
				if err := os.Link(filepath.Join(dir, filepath.Clean("/" + h.Linkname)[1:]), target); err != nil {
					t.Fatal(err)
				}
			default:
				continue // device nodes and fifos: the runtime provides /dev
			}
			if root {
				os.Lchown(target, h.Uid, h.Gid)
				if h.Typeflag != tar.TypeSymlink {
					os.Chmod(target, mode|modeBits(h.Mode))
				}
			}
		}
		rc.Close()
	}
	return dir
}

// modeBits are setuid, setgid and sticky as os.FileMode bits.
func modeBits(m int64) os.FileMode {
	var out os.FileMode
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

// TestImageRuns builds the image from a real Debian root file system and
// real binaries for this machine, reads it back from the OCI layout,
// unpacks it, and runs its entrypoint as its user in a PID and mount
// namespace chroot with a read-only root, the volumes mounted (the tiny
// model in /var/lib/jetai/models) and tmpfs on /tmp and /run/jetai, as a
// container runtime would; jetaid answers /health and an inference, and
// logs JSON lines. Inputs: JETAI_IMAGE_ROOTFS (rootfs.sh's tar for this
// architecture), JETAI_IMAGE_BIN (jetaid and jetai-ctl), JETAI_TEST_MODEL;
// `make test-image` sets them. Needs root and unshare.
func TestImageRuns(t *testing.T) {
	rootfs, bin, model := os.Getenv("JETAI_IMAGE_ROOTFS"), os.Getenv("JETAI_IMAGE_BIN"), os.Getenv("JETAI_TEST_MODEL")
	if rootfs == "" || bin == "" || model == "" || os.Geteuid() != 0 {
		msg := "needs root and JETAI_IMAGE_ROOTFS, JETAI_IMAGE_BIN and JETAI_TEST_MODEL (make test-image)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	o := testOptions(t, rootfs, bin, time.Unix(1764633600, 0).UTC())
	o.Arches = []Arch{{Arch: runtime.GOARCH, RootFS: rootfs, Bin: bin}}
	idx, _, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := WriteLayout(filepath.Join(work, "oci"), "1.2.3", idx); err != nil {
		t.Fatal(err)
	}
	back, err := layout.ImageIndexFromPath(filepath.Join(work, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := back.IndexManifest()
	inner, err := back.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	mm, _ := inner.IndexManifest()
	img, err := inner.Image(mm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	root := unpack(t, img, filepath.Join(work, "root"))
	os.Chmod(root, 0o755)

	// Volumes, owned by the image's user as an operator prepares them.
	uid, gid, _ := strings.Cut(cf.Config.User, ":")
	u, _ := strconv.Atoi(uid)
	g, _ := strconv.Atoi(gid)
	data, cache := filepath.Join(work, "data"), filepath.Join(work, "cache")
	for _, d := range []string{data, filepath.Join(data, "models"), cache} {
		os.MkdirAll(d, 0o750)
		os.Chown(d, u, g)
	}
	mb, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "models", "model.gguf"), mb, 0o644); err != nil {
		t.Fatal(err)
	}
	// The image's own config, on a free loopback port instead of 8000
	// (the test shares the host's network).
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf, _ := os.ReadFile(filepath.Join(root, "etc/jetai/jetai.hcl"))
	confDir := filepath.Join(work, "etc-jetai")
	os.MkdirAll(confDir, 0o755)
	c := strings.Replace(string(conf), `listen = "0.0.0.0:8000"`, fmt.Sprintf(`listen = "127.0.0.1:%d"`, port), 1)
	if err := os.WriteFile(filepath.Join(confDir, "jetai.hcl"), []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}

	script := `set -e
R=$1
mount --make-rprivate /
mount --bind "$R" "$R"
mount -o remount,bind,ro "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=0750,uid=` + uid + `,gid=` + gid + ` tmpfs "$R/run/jetai"
mount --bind "$2" "$R/var/lib/jetai"
mount --bind "$3" "$R/var/cache/jetai"
mount --bind "$4" "$R/etc/jetai"
shift 4
exec chroot --userspec=` + cf.Config.User + ` --groups= "$R" "$@"
`
	args := append([]string{"--pid", "--fork", "--mount", "--kill-child=SIGTERM", "sh", "-c", script, "sh", root, data, cache, confDir},
		append(cf.Config.Entrypoint, cf.Config.Cmd...)...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(cf.Config.Env, "HOME="+DataDir)
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	// After unshare is killed, jetaid gets SIGTERM (--kill-child) and
	// drains; do not wait for its output longer than that.
	cmd.WaitDelay = 40 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL) // the child gets SIGTERM (--kill-child)
		<-exited
		if t.Failed() {
			t.Logf("output:\n%s", stderr.String())
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("the entrypoint exited: %v", err)
		case <-ctx.Done():
			t.Fatal("no /health 200 within 60 s")
		case <-time.After(100 * time.Millisecond):
		}
	}
	resp, err := http.Post(base+"/v1/completions", "application/json",
		strings.NewReader(`{"model": "assistant", "prompt": "Once upon a time", "max_tokens": 8}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"text"`) {
		t.Fatalf("inference: %d %s", resp.StatusCode, body)
	}
	// Every line of the log is JSON (log_format = "json"), the runner's too.
	time.Sleep(200 * time.Millisecond)
	sc := bufio.NewScanner(bytes.NewReader(stderr.Bytes()))
	lines := 0
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			t.Errorf("a log line is not JSON: %q", sc.Text())
		}
		lines++
	}
	if lines == 0 {
		t.Error("no log lines")
	}
}
