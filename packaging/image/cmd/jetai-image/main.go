// Command jetai-image assembles jetai's OCI image from Debian root file
// systems and the .deb build's binaries (package image); `make image`
// runs it:
//
//	jetai-image --version V --created UNIX --sample packaging/jetai.hcl \
//	    --man build/deb/amd64 --arch amd64=ROOTFS.tar:BINDIR --arch arm64=... \
//	    --layout dist/jetai-oci --archives dist
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jetai/jetai/packaging/image"
)

type archFlags []image.Arch

func (a *archFlags) String() string { return fmt.Sprint(*a) }
func (a *archFlags) Set(v string) error {
	arch, rest, ok := strings.Cut(v, "=")
	rootfs, bin, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || arch == "" || rootfs == "" || bin == "" {
		return fmt.Errorf("want ARCH=ROOTFS.tar:BINDIR, got %q", v)
	}
	*a = append(*a, image.Arch{Arch: arch, RootFS: rootfs, Bin: bin})
	return nil
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("jetai-image", flag.ContinueOnError)
	var o image.Options
	var arches archFlags
	fs.StringVar(&o.Version, "version", "", "the image's `VERSION` (the .deb's)")
	fs.StringVar(&o.Revision, "revision", "", "git commit")
	fs.StringVar(&o.Source, "source", "https://github.com/jetai/jetai", "source repository `URL` (label)")
	fs.StringVar(&o.Licenses, "licenses", "", "licence label (as the .deb states it)")
	created := fs.Int64("created", 0, "every timestamp in the image, Unix `SECONDS` (the commit time)")
	sample := fs.String("sample", "packaging/jetai.hcl", "the sample config `FILE`")
	man := fs.String("man", "", "`DIR` with jetaid.8.gz and jetai-ctl.1.gz")
	layoutDir := fs.String("layout", "dist/jetai-oci", "write the OCI image layout (multi-arch index) to `DIR`")
	archives := fs.String("archives", "dist", "write a docker-archive per architecture to `DIR` (jetai-image_VERSION_ARCH.tar)")
	fs.Var(&arches, "arch", "`ARCH=ROOTFS.tar:BINDIR`, once per architecture")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "jetai-image:", err); return 1 }
	if o.Version == "" || *created == 0 || len(arches) == 0 {
		return fail(fmt.Errorf("--version, --created and --arch are required"))
	}
	o.Created, o.Arches = time.Unix(*created, 0).UTC(), arches
	var err error
	if o.Sample, err = os.ReadFile(*sample); err != nil {
		return fail(err)
	}
	if o.Config, err = image.ContainerConfig(o.Sample); err != nil {
		return fail(err)
	}
	if *man != "" {
		o.ManPages = map[string][]byte{}
		for _, p := range []string{"man8/jetaid.8.gz", "man1/jetai-ctl.1.gz"} {
			b, err := os.ReadFile(filepath.Join(*man, filepath.Base(p)))
			if err != nil {
				return fail(err)
			}
			o.ManPages[p] = b
		}
	}
	idx, images, err := image.Build(o)
	if err != nil {
		return fail(err)
	}
	if err := image.WriteLayout(*layoutDir, o.Version, idx); err != nil {
		return fail(fmt.Errorf("write %s: %w", *layoutDir, err))
	}
	d, _ := idx.Digest()
	fmt.Printf("%s: index %s\n", *layoutDir, d)
	for _, a := range arches {
		p := filepath.Join(*archives, "jetai-image_"+o.Version+"_"+a.Arch+".tar")
		if err := image.WriteDockerArchive(p, o.Version, images[a.Arch]); err != nil {
			return fail(fmt.Errorf("write %s: %w", p, err))
		}
		md, _ := images[a.Arch].Digest()
		size := int64(0)
		if ls, err := images[a.Arch].Layers(); err == nil {
			for _, l := range ls {
				s, _ := l.Size()
				size += s
			}
		}
		fmt.Printf("%s: linux/%s %s, %s compressed\n", p, a.Arch, md, strconv.FormatFloat(float64(size)/(1<<20), 'f', 1, 64)+" MiB")
	}
	return 0
}
