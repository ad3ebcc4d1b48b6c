package pull

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	hf := func(owner, repo, quant, file string) Source {
		return Source{Kind: KindHF, Owner: owner, Repo: repo, Quant: quant, File: file}
	}
	ol := func(ns, name, tag string) Source {
		return Source{Kind: KindOllama, Namespace: ns, Name: name, Tag: tag}
	}
	for _, c := range []struct {
		in   string
		want Source
		key  string
	}{
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", hf("bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M", ""), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m", hf("bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M", ""), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF", hf("bartowski", "Llama-3.2-1B-Instruct-GGUF", "", ""), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF"},
		{"hf://Qwen/Qwen2.5-1.5B-Instruct-GGUF:Q8_0", hf("Qwen", "Qwen2.5-1.5B-Instruct-GGUF", "Q8_0", ""), "hf.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF:Q8_0"},
		{"Qwen/Qwen2.5-1.5B-Instruct-GGUF:Q8_0", hf("Qwen", "Qwen2.5-1.5B-Instruct-GGUF", "Q8_0", ""), "hf.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF:Q8_0"},
		{"huggingface.co/a/b:IQ4_XS", hf("a", "b", "IQ4_XS", ""), "hf.co/a/b:IQ4_XS"},
		{"hf.co/a/b/model-Q4_K_M.gguf", hf("a", "b", "", "model-Q4_K_M.gguf"), "hf.co/a/b/model-Q4_K_M.gguf"},
		{"hf.co/a/b/Q4_K_M/model-Q4_K_M-00001-of-00002.gguf", hf("a", "b", "", "Q4_K_M/model-Q4_K_M-00001-of-00002.gguf"), "hf.co/a/b/Q4_K_M/model-Q4_K_M-00001-of-00002.gguf"},
		{"https://huggingface.co/a/b/resolve/main/x.gguf", hf("a", "b", "", "x.gguf"), "hf.co/a/b/x.gguf"},
		{"https://huggingface.co/a/b/blob/main/x.gguf", hf("a", "b", "", "x.gguf"), "hf.co/a/b/x.gguf"},
		{"  hf.co/a/b-GGUF/  ", hf("a", "b-GGUF", "", ""), "hf.co/a/b-GGUF"},
		{"a/b-GGUF", hf("a", "b-GGUF", "", ""), "hf.co/a/b-GGUF"},
		{"ollama:llama3.2:1b", ol("library", "llama3.2", "1b"), "ollama:llama3.2:1b"},
		{"ollama:llama3.2", ol("library", "llama3.2", "latest"), "ollama:llama3.2:latest"},
		{"ollama:Llama3.2:1b", ol("library", "llama3.2", "1b"), "ollama:llama3.2:1b"},
		{"ollama:someone/model:q4", ol("someone", "model", "q4"), "ollama:someone/model:q4"},
		{"ollama.com/library/qwen2.5:0.5b", ol("library", "qwen2.5", "0.5b"), "ollama:qwen2.5:0.5b"},
	} {
		got, err := ParseSource(c.in)
		if err != nil {
			t.Errorf("ParseSource(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseSource(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if got.String() != c.key {
			t.Errorf("ParseSource(%q).String() = %q, want %q", c.in, got.String(), c.key)
		}
	}
}

func TestParseSourceErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"llama3.2", "ollama:llama3.2"},
		{"hf.co/onlyowner", "no OWNER/REPO"},
		{"a/b", "needs a quant"},
		{"hf.co/a/b:Q4 K", "not a quantization name"},
		{"hf.co/a/b/readme.md", "not a .gguf file"},
		{"hf.co/a/b/../x.gguf", "bad file path"},
		{"hf.co/a/b/resolve/dev/x.gguf", "main revision"},
		{"hf.co/a/b$c:Q4_K_M", "not a Hugging Face repo name"},
		{"ftp://x/y", "unknown scheme"},
		{"ollama:a/b/c", "too many"},
		{"ollama:bad name", "not a registry name"},
		{"ollama:x:bad tag", "not a registry tag"},
	} {
		_, err := ParseSource(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSource(%q) = %v, want an error with %q", c.in, err, c.want)
			continue
		}
		if e, ok := err.(*badSource); !ok || e.Code() != "bad_request" || e.HTTPStatus() != 400 {
			t.Errorf("ParseSource(%q): error %T is not a 400 bad_request", c.in, err)
		}
	}
}

func TestMatchQuant(t *testing.T) {
	for _, c := range []struct {
		name, quant string
		want        bool
	}{
		{"Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M", true},
		{"Llama-3.2-1B-Instruct-Q4_K_M.gguf", "q4_k_m", true},
		{"Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K", false},
		{"llama-2-7b.Q4_K_M.gguf", "Q4_K_M", true},
		{"model-UD-Q4_K_XL.gguf", "Q4_K_XL", true},
		{"qwen2.5-1.5b-instruct-q8_0.gguf", "Q8_0", true},
		{"model-Q8_0-00001-of-00002.gguf", "Q8_0", true},
		{"model-IQ4_XS.gguf", "Q4_XS", false},
	} {
		if got := matchQuant(c.name, c.quant); got != c.want {
			t.Errorf("matchQuant(%q, %q) = %v, want %v", c.name, c.quant, got, c.want)
		}
	}
}
