package pull

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Kinds of source.
const (
	KindHF     = "hf"
	KindOllama = "ollama"
)

// Source is a parsed pull source.
type Source struct {
	Kind string `json:"kind"`
	// Hugging Face: Owner/Repo, and either Quant ("" for the default) or
	// File (a path in the repo).
	Owner string `json:"owner,omitempty"`
	Repo  string `json:"repo,omitempty"`
	Quant string `json:"quant,omitempty"`
	File  string `json:"file,omitempty"`
	// Ollama: Namespace ("library" unless given), Name and Tag.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Tag       string `json:"tag,omitempty"`
}

// String is the source's canonical form, the key that pulls are shared
// and cancelled by: hf.co/OWNER/REPO[:QUANT], hf.co/OWNER/REPO/FILE or
// ollama:[NS/]NAME:TAG.
func (s Source) String() string {
	switch s.Kind {
	case KindOllama:
		n := s.Name
		if s.Namespace != "library" {
			n = s.Namespace + "/" + n
		}
		return "ollama:" + n + ":" + s.Tag
	default:
		b := "hf.co/" + s.Owner + "/" + s.Repo
		if s.File != "" {
			return b + "/" + s.File
		}
		if s.Quant != "" {
			return b + ":" + s.Quant
		}
		return b
	}
}

// Repo names the HF repo "OWNER/REPO".
func (s Source) RepoID() string { return s.Owner + "/" + s.Repo }

// badSource is a source that does not parse: a 400 "bad_request".
type badSource struct{ msg string }

func (e *badSource) Error() string   { return e.msg }
func (e *badSource) Code() string    { return "bad_request" }
func (e *badSource) HTTPStatus() int { return http.StatusBadRequest }

const sourceForms = "hf.co/OWNER/REPO[:QUANT], hf://OWNER/REPO[:QUANT], OWNER/REPO:QUANT, hf.co/OWNER/REPO/FILE.gguf or ollama:NAME[:TAG]"

var (
	// Hub names: letters, digits, '-', '_', '.'; at most 96 characters.
	hubName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)
	quantRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)
	// Ollama names and tags (see Ollama's types/model/name.go).
	ollamaPart = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,79}$`)
	ollamaTag  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$`)
)

// ParseSource parses what `jetai-ctl pull` was given.
func ParseSource(s string) (Source, error) {
	in := strings.TrimSpace(s)
	bad := func(why string) (Source, error) {
		return Source{}, &badSource{fmt.Sprintf("pull source %q: %s; give %s", s, why, sourceForms)}
	}
	if in == "" {
		return bad("empty")
	}
	if rest, ok := cutPrefixFold(in, "ollama:"); ok {
		return parseOllama(s, strings.TrimPrefix(rest, "//"))
	}
	for _, p := range []string{"https://ollama.com/", "ollama.com/", "registry.ollama.ai/"} {
		if rest, ok := cutPrefixFold(in, p); ok {
			return parseOllama(s, rest)
		}
	}
	rest := in
	explicit := false
	for _, p := range []string{"hf://", "https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "https://hf.co/", "hf.co/"} {
		if r, ok := cutPrefixFold(rest, p); ok {
			rest, explicit = r, true
			break
		}
	}
	if strings.Contains(rest, "://") {
		return bad("unknown scheme")
	}
	rest = strings.Trim(rest, "/")
	parts := strings.Split(rest, "/")
	if len(parts) < 2 {
		if !explicit {
			return bad("no OWNER/REPO (for an Ollama name write ollama:" + rest + ")")
		}
		return bad("no OWNER/REPO")
	}
	src := Source{Kind: KindHF, Owner: parts[0]}
	if len(parts) == 2 {
		repo, quant, hasQuant := strings.Cut(parts[1], ":")
		src.Repo = repo
		if hasQuant {
			if !quantRe.MatchString(quant) {
				return bad(fmt.Sprintf("quant %q is not a quantization name such as Q4_K_M", quant))
			}
			src.Quant = strings.ToUpper(quant)
		}
	} else {
		src.Repo = parts[1]
		file := parts[2:]
		// A page or download URL: OWNER/REPO/{resolve,blob}/main/FILE.
		if len(file) >= 3 && (file[0] == "resolve" || file[0] == "blob") {
			if file[1] != "main" {
				return bad("only the main revision is pulled")
			}
			file = file[2:]
		}
		for _, f := range file {
			if f == "" || f == "." || f == ".." || strings.ContainsAny(f, `\:`) {
				return bad("bad file path")
			}
		}
		src.File = strings.Join(file, "/")
		if !strings.HasSuffix(strings.ToLower(src.File), ".gguf") {
			return bad(fmt.Sprintf("%q is not a .gguf file", src.File))
		}
	}
	if !hubName.MatchString(src.Owner) || !hubName.MatchString(src.Repo) || strings.Contains(src.Owner+src.Repo, "..") {
		return bad(fmt.Sprintf("%q is not a Hugging Face repo name", src.Owner+"/"+src.Repo))
	}
	if !explicit && src.File == "" && src.Quant == "" && !strings.HasSuffix(strings.ToLower(src.Repo), "gguf") {
		// A bare OWNER/REPO is too easily a typo of something else;
		// with a quant or a prefix it is clearly a Hub repo.
		return bad("a bare OWNER/REPO needs a quant (OWNER/REPO:Q4_K_M) or the hf.co/ prefix")
	}
	return src, nil
}

func parseOllama(orig, rest string) (Source, error) {
	bad := func(why string) (Source, error) {
		return Source{}, &badSource{fmt.Sprintf("pull source %q: %s; give ollama:NAME[:TAG], e.g. ollama:llama3.2:1b", orig, why)}
	}
	rest = strings.Trim(rest, "/")
	name, tag, hasTag := strings.Cut(rest, ":")
	if !hasTag {
		tag = "latest"
	}
	if !ollamaTag.MatchString(tag) {
		return bad(fmt.Sprintf("tag %q is not a registry tag", tag))
	}
	src := Source{Kind: KindOllama, Namespace: "library", Tag: tag}
	parts := strings.Split(strings.ToLower(name), "/")
	switch len(parts) {
	case 1:
		src.Name = parts[0]
	case 2:
		src.Namespace, src.Name = parts[0], parts[1]
	default:
		return bad("too many path elements")
	}
	if !ollamaPart.MatchString(src.Namespace) || !ollamaPart.MatchString(src.Name) {
		return bad(fmt.Sprintf("%q is not a registry name", name))
	}
	return src, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
