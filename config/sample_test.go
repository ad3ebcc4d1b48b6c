package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
)

const (
	samplePath        = "../packaging/jetai.hcl"
	sampleModelPlaceh = "/var/lib/jetai/models/model.gguf"
)

// loadSample parses packaging/jetai.hcl with the model path replaced.
func loadSample(t *testing.T, model string) *Config {
	t.Helper()
	src, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), sampleModelPlaceh) {
		t.Fatalf("%s no longer holds the model path %s", samplePath, sampleModelPlaceh)
	}
	src = []byte(strings.Replace(string(src), sampleModelPlaceh, model, 1))
	c, err := Parse(src, samplePath)
	if err != nil {
		t.Fatalf("the packaged sample does not validate:\n%v", err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("the packaged sample has warnings:\n%v", c.Warnings.Error())
	}
	return c
}

// TestPackagedSample: the sample validates once a model path is filled in,
// and every value it shows is the default of defaults.go (a config with
// only the model's path has exactly the same meaning).
func TestPackagedSample(t *testing.T) {
	model := testmodel.Path(t)
	sample := loadSample(t, model)
	minimal, err := Parse([]byte(`model "assistant" { path = "`+model+`" }`), filepath.Join(filepath.Dir(samplePath), "minimal.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	p := Diff(minimal, sample)
	if !p.Empty() {
		t.Errorf("packaging/jetai.hcl differs from the defaults in defaults.go: %s", p)
	}
}

// TestPackagedSampleDummyModel runs the same check without the real model.
func TestPackagedSampleDummyModel(t *testing.T) {
	model := writeModel(t, t.TempDir(), "m.gguf", 1000)
	loadSample(t, model)
}

// TestPackagedSampleNoModelYet: the sample as installed, before a model
// is copied to its path, is usable: one warning, the model unavailable.
// (A fresh .deb install starts jetaid with it; packaging/test checks that.)
func TestPackagedSampleNoModelYet(t *testing.T) {
	src, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "model.gguf")
	src = []byte(strings.Replace(string(src), sampleModelPlaceh, missing, 1))
	c, err := Parse(src, samplePath)
	if err != nil {
		t.Fatalf("the sample without its model file is not usable:\n%v", err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Message, missing+` of model "assistant" does not exist`) {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if m := c.Models[0]; m.FileError == "" || m.FileSize != 0 {
		t.Errorf("model %+v", m)
	}
}

// TestSampleKeysCovered: the sample mentions every key of the schema.
func TestSampleKeysCovered(t *testing.T) {
	src, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	// Every key of the schema appears in the sample (set or commented out).
	for _, key := range []string{
		"listen", "admin_socket", "admin_group", "api_keys", "cors_origins", "allowed_hosts", "max_body", "request_timeout",
		"queue_per_model", "queue_total", "max_connections", "log_level", "log_format", "budget", "reserve", "dir", "max_size", "zones",
		"soft_limit", "hard_limit", "poll_interval", "hysteresis", "default_model", "tier \"", "models",
		"max_prompt_tokens", "max_tokens", "structured", "path", "aliases", "priority", "memory_budget",
		"context", "parallel", "threads", "gpu_layers", "keep_alive", "preload", "pinned", "tier =",
		"flash_attention", "kv_cache", "cache", "sampling", "temperature", "top_k", "top_p", "min_p", "repeat_penalty",
		"seed", "stop", "adapter", "scale", "responses", "response_ttl", "responses_disk", "cache_responses", "experiment \"", "variant \"",
		"weight", "sticky", "mode",
	} {
		if !strings.Contains(string(src), key) {
			t.Errorf("packaging/jetai.hcl does not mention %q", key)
		}
	}
}
