package config

import (
	"net/url"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// pull { ... }: where `jetai-ctl pull` downloads models from. Every field
// applies live: each pull reads the config in force when it starts.

// Defaults of the pull block.
const (
	DefaultHFEndpoint     = "https://huggingface.co"
	DefaultOllamaRegistry = "https://registry.ollama.ai"
)

// Pull is the pull block.
type Pull struct {
	// HFEndpoint is the Hugging Face Hub's base URL (a mirror, or a local
	// hub in tests); the HF_ENDPOINT environment variable does not apply,
	// the config says it.
	HFEndpoint string `json:"hf_endpoint"`
	// OllamaRegistry is the Ollama registry's base URL.
	OllamaRegistry string `json:"ollama_registry"`
	// HFTokenFile holds a Hugging Face access token for gated repos
	// (absolute; "" for none). HF_TOKEN in jetaid's environment, or sent
	// by jetai-ctl from its own, comes first.
	HFTokenFile string `json:"hf_token_file"`
}

type pullBlock struct {
	HFEndpoint     *string   `hcl:"hf_endpoint,optional"`
	OllamaRegistry *string   `hcl:"ollama_registry,optional"`
	HFTokenFile    *string   `hcl:"hf_token_file,optional"`
	Body           hcl.Body  `hcl:",body"`
	DefRange       hcl.Range `hcl:",def_range"`
}

func (d *decoder) pull(p *Pull, b *pullBlock) {
	if b == nil {
		b = &pullBlock{}
	}
	p.HFEndpoint = strings.TrimRight(str(b.HFEndpoint, DefaultHFEndpoint), "/")
	p.OllamaRegistry = strings.TrimRight(str(b.OllamaRegistry, DefaultOllamaRegistry), "/")
	for _, f := range []struct {
		name string
		v    string
	}{{"hf_endpoint", p.HFEndpoint}, {"ollama_registry", p.OllamaRegistry}} {
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			d.errf(valueRange(b.Body, f.name, b.DefRange), "pull %s %q must be an http:// or https:// URL such as %q", f.name, f.v, map[string]string{"hf_endpoint": DefaultHFEndpoint, "ollama_registry": DefaultOllamaRegistry}[f.name])
		}
	}
	if b.HFTokenFile != nil {
		if strings.TrimSpace(*b.HFTokenFile) == "" {
			d.errf(valueRange(b.Body, "hf_token_file", b.DefRange), "pull hf_token_file must name a file (or leave it out)")
			return
		}
		p.HFTokenFile = d.path(*b.HFTokenFile)
		if _, err := os.Stat(p.HFTokenFile); err != nil {
			// Not an error: the file may come later (a secret mounted
			// after start); a pull that needs it says so.
			d.warnf(valueRange(b.Body, "hf_token_file", b.DefRange), "pull hf_token_file %s: %v; gated repos will be refused until it is there", p.HFTokenFile, err)
		}
	}
}
