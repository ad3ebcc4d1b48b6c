package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: not root, and a fixed id so volumes can be prepared
// for it (chown 10001 on the host, fsGroup in Kubernetes).
const (
	UID  = 10001
	GID  = 10001
	User = "jetai"
)

// Paths in the image.
const (
	ConfigPath = "/etc/jetai/jetai.hcl"
	DataDir    = "/var/lib/jetai"   // models: a volume
	CacheDir   = "/var/cache/jetai" // the model cache: a volume
	RunDir     = "/run/jetai"       // the admin socket: a volume (tmpfs)
	Port       = "8000/tcp"
)

// Arch is one architecture's inputs.
type Arch struct {
	Arch   string // "amd64" or "arm64"
	RootFS string // the base root file system, a tar file (rootfs.sh)
	// Bin is a directory with jetaid and jetai-ctl built for Arch (the
	// .deb build's stage directory).
	Bin string
}

// Options are an image's inputs.
type Options struct {
	Version  string // the .deb's version; the image's tag and label
	Revision string // git commit
	Source   string // the source repository's URL
	Licenses string // SPDX expression or text, as the .deb states it
	// Created is every timestamp in the image (commit time, for
	// reproducible builds).
	Created time.Time
	// Config is /etc/jetai/jetai.hcl (ContainerConfig of the sample).
	Config []byte
	// Sample is the .deb's sample config, kept at
	// /usr/share/doc/jetai/jetai.hcl.sample.
	Sample []byte
	// ManPages maps a path under /usr/share/man to a gzipped page
	// ("man8/jetaid.8.gz").
	ManPages map[string][]byte
	Arches   []Arch
}

// ContainerConfig makes the sample config fit a container: the REST API
// on every interface of the container's network (8000), and JSON log
// lines on stderr for the log collector.
func ContainerConfig(sample []byte) ([]byte, error) {
	s := string(sample)
	for _, r := range []struct{ from, to string }{
		{`  listen = "127.0.0.1:8000"`, `  listen = "0.0.0.0:8000"`},
		{`  log_format = "text"`, `  log_format = "json"`},
	} {
		if strings.Count(s, r.from) != 1 {
			return nil, fmt.Errorf("the sample config has no single line %q to change", r.from)
		}
		s = strings.Replace(s, r.from, r.to, 1)
	}
	return []byte(s), nil
}

// Build assembles one image per architecture and the index over them.
func Build(o Options) (v1.ImageIndex, map[string]v1.Image, error) {
	if o.Version == "" || o.Created.IsZero() || len(o.Config) == 0 || len(o.Arches) == 0 {
		return nil, nil, errors.New("image: Version, Created, Config and Arches are required")
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := map[string]v1.Image{}
	for _, a := range o.Arches {
		img, err := buildArch(o, a)
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", a.Arch, err)
		}
		images[a.Arch] = img
		p := &v1.Platform{OS: "linux", Architecture: a.Arch}
		if a.Arch == "arm64" {
			p.Variant = "v8"
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return idx, images, nil
}

func buildArch(o Options, a Arch) (v1.Image, error) {
	passwd, group, err := readAccounts(a.RootFS)
	if err != nil {
		return nil, err
	}
	base, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return normalized(a.RootFS, o.Created) },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	appTar, err := appLayer(o, a, passwd, group)
	if err != nil {
		return nil, err
	}
	app, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(appTar)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("jetai layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: o.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "debootstrap --variant=minbase bookworm (packaging/image/rootfs.sh)"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "jetai " + o.Version + ": jetaid, jetai-ctl, config, man pages, user jetai"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = a.Arch, "linux", created
	if a.Arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, GID),
		Entrypoint:   []string{"/usr/bin/jetaid"},
		Cmd:          []string{"--config", ConfigPath},
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "JETAI_SOCKET=" + RunDir + "/admin.sock"},
		WorkingDir:   DataDir,
		ExposedPorts: map[string]struct{}{Port: {}},
		// /tmp holds the runners' sockets; /run/jetai the admin socket.
		// With a read-only root file system these are the writable places.
		Volumes:    map[string]struct{}{DataDir: {}, CacheDir: {}, RunDir: {}, "/tmp": {}},
		StopSignal: "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "jetai",
			"org.opencontainers.image.description": "jetaid: serves several local LLMs with llama.cpp (REST API, OpenAI-compatible); jetai-ctl drives it",
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.revision":    o.Revision,
			"org.opencontainers.image.source":      o.Source,
			"org.opencontainers.image.licenses":    o.Licenses,
			"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
		},
	}
	return mutate.ConfigFile(img, cf)
}

// normalized streams the root file system tar with every timestamp set to
// created and nothing of the machine that made it (user and group names,
// access and change times, PAX records).
func normalized(path string, created time.Time) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		tr := tar.NewReader(f)
		tw := tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				pw.CloseWithError(fmt.Errorf("read %s: %w", path, err))
				return
			}
			h.Name = strings.TrimPrefix(h.Name, "./")
			if h.Name == "" || h.Name == "/" {
				continue
			}
			h.ModTime, h.AccessTime, h.ChangeTime = created, time.Time{}, time.Time{}
			h.Uname, h.Gname, h.PAXRecords, h.Format = "", "", nil, tar.FormatPAX
			if err := tw.WriteHeader(h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr, nil
}

// readAccounts returns the base's /etc/passwd and /etc/group.
func readAccounts(path string) (passwd, group []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", path, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "etc/passwd":
			passwd, err = io.ReadAll(tr)
		case "etc/group":
			group, err = io.ReadAll(tr)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if passwd == nil || group == nil {
		return nil, nil, fmt.Errorf("%s has no /etc/passwd or /etc/group: not a root file system", path)
	}
	return passwd, group, nil
}

// appLayer is the layer with jetai in it.
func appLayer(o Options, a Arch, passwd, group []byte) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		dir  bool
		uid  int
		data []byte
	}
	var es []entry
	for _, bin := range []string{"jetaid", "jetai-ctl"} {
		b, err := os.ReadFile(filepath.Join(a.Bin, bin))
		if err != nil {
			return nil, err
		}
		es = append(es, entry{name: "usr/bin/" + bin, mode: 0o755, data: b})
	}
	es = append(es,
		entry{name: "etc/jetai", mode: 0o755, dir: true},
		entry{name: strings.TrimPrefix(ConfigPath, "/"), mode: 0o644, data: o.Config},
		entry{name: "etc/passwd", mode: 0o644, data: appendLine(passwd, fmt.Sprintf("%s:x:%d:%d:jetai daemon:%s:/usr/sbin/nologin", User, UID, GID, DataDir))},
		entry{name: "etc/group", mode: 0o644, data: appendLine(group, fmt.Sprintf("%s:x:%d:", User, GID))},
		entry{name: strings.TrimPrefix(DataDir, "/"), mode: 0o750, dir: true, uid: UID},
		entry{name: strings.TrimPrefix(DataDir, "/") + "/models", mode: 0o750, dir: true, uid: UID},
		entry{name: strings.TrimPrefix(CacheDir, "/"), mode: 0o750, dir: true, uid: UID},
		entry{name: strings.TrimPrefix(RunDir, "/"), mode: 0o750, dir: true, uid: UID},
		entry{name: "usr/share/doc/jetai", mode: 0o755, dir: true},
	)
	if len(o.Sample) > 0 {
		es = append(es, entry{name: "usr/share/doc/jetai/jetai.hcl.sample", mode: 0o644, data: o.Sample})
	}
	mandirs := map[string]bool{}
	for p, b := range o.ManPages {
		es = append(es, entry{name: "usr/share/man/" + p, mode: 0o644, data: b})
		mandirs["usr/share/man/"+filepath.Dir(p)] = true
	}
	if len(mandirs) > 0 { // rootfs.sh leaves the base without man pages
		es = append(es, entry{name: "usr/share/man", mode: 0o755, dir: true})
		for d := range mandirs {
			es = append(es, entry{name: d, mode: 0o755, dir: true})
		}
	}
	// Parents first, then by name: the same order every time.
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: o.Created, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if e.uid != 0 {
			h.Gid = GID
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func appendLine(b []byte, line string) []byte {
	out := bytes.TrimRight(b, "\n")
	out = append(append(append([]byte{}, out...), '\n'), line...)
	return append(out, '\n')
}

// WriteLayout writes idx as an OCI image layout in dir (replacing one
// there): index.json holds the multi-arch index, named Tag(version)
// (org.opencontainers.image.ref.name), so `skopeo copy oci:DIR:TAG` and
// `podman pull oci:DIR:TAG` find it.
func WriteLayout(dir, version string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": Tag(version)}))
}

// Tag is version as an image tag: a .deb version's "~" and "+" (which a
// tag cannot hold) become "-", at most 128 characters.
func Tag(version string) string {
	b := []byte(version)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

// WriteDockerArchive writes img as a docker-archive tarball tagged
// jetai:Tag(version) (docker load, podman load).
func WriteDockerArchive(path, version string, img v1.Image) error {
	tag, err := name.NewTag("jetai:" + Tag(version))
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
