package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Drop-in files: the main config file plus every *.hcl file in the
// directory DropInDir names are one config, decoded and validated as a
// whole. They exist so that tools (`jetai-ctl import --add`, `pull --add`)
// can add a model without rewriting the file a person edits.
//
// Rules, all enforced here so that start, reload, --check-config and the
// admin validate command agree:
//   - the files are read in lexical order of their names, after the main
//     file; a name starting with "." is skipped (editor swap and lock
//     files such as .#chat.hcl), and so is anything not ending in .hcl
//     (chat.hcl~, chat.hcl.swp, 4913);
//   - a drop-in holds only the blocks in DropInBlocks (model blocks):
//     global settings (server, memory, cache, thermal, router) have one
//     place, the main file, so no file can quietly override another;
//   - relative paths in a drop-in resolve against the main file's
//     directory, as in the main file: moving a block between files does
//     not change what it means;
//   - an empty drop-in is allowed and adds nothing.

// DropInDirName is the drop-in directory's name, beside the main config.
const DropInDirName = "jetai.d"

// MaxDropIns bounds how many drop-in files a config reads; each costs an
// open and a parse, and a directory of thousands is a mistake.
const MaxDropIns = 1000

// maxTotalSize bounds the bytes of the main file and all drop-ins
// together (each is also at most MaxFileSize).
const maxTotalSize = 4 * MaxFileSize

// DropInBlocks are the block types a drop-in file may hold.
var DropInBlocks = []string{"model"}

// DropInDir is the drop-in directory of the config file at mainPath:
// jetai.d beside it (/etc/jetai/jetai.d for /etc/jetai/jetai.hcl).
func DropInDir(mainPath string) string {
	return filepath.Join(filepath.Dir(mainPath), DropInDirName)
}

// DropInDirOrDefault is c.DropInDir, or DropInDir(c.Path) for a Config
// from Parse.
func (c *Config) DropInDirOrDefault() string {
	if c.DropInDir != "" {
		return c.DropInDir
	}
	d := DropInDir(c.Path)
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return d
}

// IsDropInName reports whether a file name in the drop-in directory is
// read as a drop-in: it ends in .hcl and does not start with ".".
func IsDropInName(name string) bool {
	return strings.HasSuffix(name, ".hcl") && !strings.HasPrefix(name, ".") && len(name) > len(".hcl")
}

// source is one config file's name and bytes.
type source struct {
	name string
	src  []byte
	// err is why the file could not be read (a drop-in that is there but
	// unreadable); src is nil then.
	err error
}

// readDropIns reads the drop-in files beside mainPath, in lexical order.
// A missing directory is no drop-ins. A file that vanishes between the
// listing and the read (a rename in progress) is skipped; one that cannot
// be read is returned with its error.
func readDropIns(mainPath string) ([]source, error) {
	dir := DropInDir(mainPath)
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if IsDropInName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) > MaxDropIns {
		return nil, fmt.Errorf("%d drop-in files; a config reads at most %d", len(names), MaxDropIns)
	}
	var out []source
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile, or a dangling symlink
		}
		if err == nil && fi.IsDir() {
			continue
		}
		b, err := readLimited(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			out = append(out, source{name: p, err: unwrapPath(err)})
			continue
		}
		out = append(out, source{name: p, src: b})
	}
	return out, nil
}

// contentHash is Config.Hash: the sha256 of the main file's bytes when
// there are no drop-ins (so a single-file config hashes as the file does),
// otherwise of the main file followed by each drop-in's name and bytes.
func contentHash(main []byte, dropIns []source) string {
	h := sha256.New()
	h.Write(main)
	for _, d := range dropIns {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", filepath.Base(d.name), len(d.src))
		h.Write(d.src)
		if d.err != nil {
			fmt.Fprintf(h, "\x00unreadable: %v", d.err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadWithDropIns decodes src (the main file, named filename) with the
// drop-ins beside filename on disk.
func loadWithDropIns(src []byte, filename string) (*Config, error) {
	if ds := checkText(src, filename); ds != nil {
		return nil, ds
	}
	dropIns, err := readDropIns(filename)
	if err != nil {
		return nil, Diagnostics{{Severity: Error, Filename: DropInDir(filename), Message: "cannot read the drop-in directory: " + err.Error()}}
	}
	return parseFiles(src, filename, dropIns)
}

// parseFiles is Parse over the main file and its drop-ins.
func parseFiles(src []byte, filename string, dropIns []source) (*Config, error) {
	total := len(src)
	var ds Diagnostics
	for _, d := range dropIns {
		total += len(d.src)
		switch {
		case d.err != nil:
			ds = append(ds, Diagnostic{Severity: Error, Filename: d.name, Message: "cannot read the drop-in file: " + d.err.Error(), Err: d.err})
		case len(strings.TrimSpace(string(d.src))) == 0:
			// Empty: adds nothing.
		default:
			ds = append(ds, checkText(d.src, d.name)...)
		}
	}
	if total > maxTotalSize {
		ds = append(ds, Diagnostic{Severity: Error, Filename: DropInDir(filename),
			Message: fmt.Sprintf("the config file and its drop-ins hold %d bytes together; the limit is %d", total, maxTotalSize)})
	}
	if len(ds) > 0 {
		return nil, capped(ds, filename, "errors")
	}
	c, diags := decodeFiles(src, filename, dropIns)
	if diags.HasErrors() {
		return nil, capped(diags.errorsOnly(), filename, "errors")
	}
	c.Hash = contentHash(src, dropIns)
	c.DropInDir = DropInDir(c.Path)
	if abs, err := filepath.Abs(c.DropInDir); err == nil {
		c.DropInDir = abs
	}
	c.DropIns = []string{}
	for _, d := range dropIns {
		c.DropIns = append(c.DropIns, d.name)
	}
	c.Warnings = capped(diags, filename, "warnings")
	return c, nil
}

// parseDropIn parses one drop-in and checks that it holds only what a
// drop-in may. Its blocks join the main file's.
func parseDropIn(d source, mainName string) (*hclsyntax.Body, Diagnostics) {
	if len(strings.TrimSpace(string(d.src))) == 0 {
		return &hclsyntax.Body{}, nil
	}
	f, hd := hclsyntax.ParseConfig(d.src, d.name, hcl.InitialPos)
	if hd.HasErrors() {
		return nil, fromHCL(d.name, hd)
	}
	body := f.Body.(*hclsyntax.Body)
	var ds Diagnostics
	allowed := map[string]bool{}
	for _, b := range DropInBlocks {
		allowed[b] = true
	}
	for name, a := range body.Attributes {
		r := a.NameRange
		ds = append(ds, newDiag(Error, d.name, &r, fmt.Sprintf("a drop-in file holds only %s blocks; the setting %q belongs in a block of the main config file %s", strings.Join(DropInBlocks, ", "), name, mainName)))
	}
	var keep []*hclsyntax.Block
	for _, b := range body.Blocks {
		if allowed[b.Type] {
			keep = append(keep, b)
			continue
		}
		r := b.TypeRange
		ds = append(ds, newDiag(Error, d.name, &r, fmt.Sprintf("a drop-in file holds only %s blocks; the %s block belongs in the main config file %s", strings.Join(DropInBlocks, ", "), b.Type, mainName)))
	}
	body.Blocks = keep
	return body, ds
}

// LoadDropIn is Load of the config at mainPath with the drop-in file
// dropInPath (in DropInDir(mainPath)) holding src, whether that file is on
// disk yet or not: how a drop-in is checked before it is put in place,
// against everything else it will be read with.
func LoadDropIn(mainPath, dropInPath string, src []byte) (*Config, error) {
	main, err := readLimited(mainPath)
	if err != nil {
		return nil, Diagnostics{{Severity: Error, Filename: mainPath, Message: "cannot read the config file: " + err.Error(), Err: err}}
	}
	if ds := checkText(main, mainPath); ds != nil {
		return nil, ds
	}
	dropIns, err := readDropIns(mainPath)
	if err != nil {
		return nil, Diagnostics{{Severity: Error, Filename: DropInDir(mainPath), Message: "cannot read the drop-in directory: " + err.Error()}}
	}
	this := source{name: dropInPath, src: src}
	replaced := false
	for i := range dropIns {
		if filepath.Base(dropIns[i].name) == filepath.Base(dropInPath) {
			dropIns[i], replaced = this, true
		}
	}
	if !replaced {
		dropIns = append(dropIns, this)
		sort.SliceStable(dropIns, func(i, j int) bool { return filepath.Base(dropIns[i].name) < filepath.Base(dropIns[j].name) })
	}
	return parseFiles(main, mainPath, dropIns)
}

// CheckDropIn reports on LoadDropIn as Check does; the report names the
// drop-in.
func CheckDropIn(mainPath, dropInPath string, src []byte) Report {
	return report(dropInPath, func() (*Config, error) { return LoadDropIn(mainPath, dropInPath, src) })
}
