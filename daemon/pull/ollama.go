package pull

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// The Ollama registry is an OCI distribution registry: a manifest lists
// layers by media type and sha256 digest; the model layer is a GGUF file
// (see Ollama's server/images.go).
const (
	ollamaManifestV2 = "application/vnd.docker.distribution.manifest.v2+json"
	ollamaModelLayer = "application/vnd.ollama.image.model"
	ollamaProjector  = "application/vnd.ollama.image.projector"
)

type ollamaManifest struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	Layers        []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
}

func (m *Manager) resolveOllama(ctx context.Context, o Options, src Source) (Plan, error) {
	base := o.OllamaRegistry + "/v2/" + src.Namespace + "/" + src.Name
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/manifests/"+src.Tag, nil)
	if err != nil {
		return Plan{}, err
	}
	req.Header.Set("Accept", ollamaManifestV2)
	resp, err := m.client.Do(req)
	if err != nil {
		return Plan{}, errorf(http.StatusBadGateway, CodeUpstream, "registry %s: %v", o.OllamaRegistry, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return Plan{}, errorf(http.StatusNotFound, CodeNotFound, "the registry %s has no %s (check the name and tag on ollama.com/library, e.g. ollama:llama3.2:1b)", o.OllamaRegistry, src)
	case resp.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Plan{}, errorf(http.StatusBadGateway, CodeUpstream, "registry %s answered %s for %s: %s", o.OllamaRegistry, resp.Status, src, strings.TrimSpace(string(b)))
	}
	var man ollamaManifest
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&man); err != nil {
		return Plan{}, errorf(http.StatusBadGateway, CodeUpstream, "registry %s: bad manifest for %s: %v", o.OllamaRegistry, src, err)
	}
	stem := "ollama--" + src.Namespace + "--" + src.Name + "--" + src.Tag
	plan := Plan{Source: src}
	for _, l := range man.Layers {
		role := ""
		switch l.MediaType {
		case ollamaModelLayer:
			role = "model"
		case ollamaProjector:
			role = "mmproj"
		default:
			continue // template, params, license, system: Ollama's own settings
		}
		sum, ok := strings.CutPrefix(l.Digest, "sha256:")
		if !ok || len(sum) != 64 {
			return Plan{}, errorf(http.StatusBadGateway, CodeUpstream, "registry %s: layer digest %q of %s is not a sha256", o.OllamaRegistry, l.Digest, src)
		}
		name := stem + ".gguf"
		if role == "mmproj" {
			name = stem + "--mmproj.gguf"
		}
		plan.Files = append(plan.Files, File{Name: cacheName(name), Path: l.Digest, URL: base + "/blobs/" + l.Digest,
			Size: l.Size, SHA256: sum, Role: role, Origin: src.String() + "@" + l.Digest})
	}
	if len(plan.Files) == 0 || plan.Files[0].Role != "model" && (len(plan.Files) < 2 || plan.Files[1].Role != "model") {
		return Plan{}, errorf(http.StatusUnprocessableEntity, "rejected", "%s has no model layer (%s) in its manifest", src, ollamaModelLayer)
	}
	if plan.Files[0].Role != "model" {
		plan.Files[0], plan.Files[1] = plan.Files[1], plan.Files[0]
	}
	return plan, nil
}
