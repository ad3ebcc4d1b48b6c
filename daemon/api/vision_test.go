package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

var (
	visionOnce sync.Once
	visionEnv  *env
)

// visionServer serves "vision", the generated ChatML model with a
// generated projector (64 tokens an image), and "story" without one.
func visionServer(t *testing.T) *env {
	t.Helper()
	chat, _ := genModels(t)
	story := testmodel.Path(t)
	proj := filepath.Join(t.TempDir(), "mmproj.gguf")
	if err := modelgen.GenerateProjector(proj, modelgen.TinyProjector(modelgen.Tiny().Embd)); err != nil {
		t.Fatal(err)
	}
	visionOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jetai-vision-")
		if err != nil {
			t.Fatal(err)
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		p := filepath.Join(dir, "mmproj.gguf")
		b, err := os.ReadFile(proj)
		if err != nil || os.WriteFile(p, b, 0o644) != nil {
			t.Fatal("copy projector", err)
		}
		visionEnv = start(t, fmt.Sprintf(`
server {
  max_body         = "1MiB"
  max_image_pixels = 100000
}
model "vision" {
  path     = %q
  mmproj   = %q
  context  = 160
  parallel = 2
  threads  = 1
  sampling {
    max_tokens = 12
  }
}
model "story" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
}
`, chat, p, story))
	})
	if visionEnv == nil {
		t.Fatal("vision server failed to start")
	}
	return visionEnv
}

func imageB64(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// pngOf is a w×h PNG, base64.
func pngOf(t *testing.T, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 9, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func chatWithImage(model, text, dataURL string) string {
	parts := fmt.Sprintf(`[{"type":"text","text":%q}]`, text)
	if dataURL != "" {
		parts = fmt.Sprintf(`[{"type":"image_url","image_url":{"url":%q}},{"type":"text","text":%q}]`, dataURL, text)
	}
	return fmt.Sprintf(`{"model":%q,"temperature":0,"messages":[{"role":"user","content":%s}]}`, model, parts)
}

func TestVisionOpenAI(t *testing.T) {
	e := visionServer(t)
	grad := "data:image/png;base64," + imageB64(t, "gradient.png")
	checker := "data:image/jpeg;base64," + imageB64(t, "checker.jpg")
	content := func(a answer) string {
		t.Helper()
		if a.Status != 200 {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
		ch, _ := a.JSON["choices"].([]any)
		c0, _ := ch[0].(map[string]any)
		return str(c0, "message", "content")
	}
	usage := func(a answer, key string) float64 {
		u, _ := a.JSON["usage"].(map[string]any)
		d, _ := u["prompt_tokens_details"].(map[string]any)
		if key == "prompt_tokens" {
			v, _ := u[key].(float64)
			return v
		}
		v, _ := d[key].(float64)
		return v
	}
	text := post(t, e.url+"/v1/chat/completions", chatWithImage("vision", "What is this?", ""))
	a1 := post(t, e.url+"/v1/chat/completions", chatWithImage("vision", "What is this?", grad))
	a2 := post(t, e.url+"/v1/chat/completions", chatWithImage("vision", "What is this?", grad))
	b := post(t, e.url+"/v1/chat/completions", chatWithImage("vision", "What is this?", checker))
	if content(a1) == content(text) {
		t.Errorf("the image did not change the answer %q", content(a1))
	}
	if content(a1) != content(a2) {
		t.Errorf("the same image gave %q, then %q", content(a1), content(a2))
	}
	if content(a1) == content(b) {
		t.Errorf("two images gave the same answer %q", content(a1))
	}
	// The chat's text is tokenized piece by piece around the image (its
	// place is the user's content), which may split one token more.
	if d := usage(a1, "prompt_tokens") - 64 - usage(text, "prompt_tokens"); usage(a1, "image_tokens") != 64 || d < 0 || d > 2 {
		t.Errorf("usage with an image %s, without %s", a1.Body, text.Body)
	}
}

func TestVisionSurfaces(t *testing.T) {
	e := visionServer(t)
	img := imageB64(t, "gradient.png")
	for _, tc := range []struct {
		name, path, body string
		count            func(map[string]any) float64
	}{
		{"ollama chat", "/api/chat", fmt.Sprintf(`{"model":"vision","stream":false,"options":{"temperature":0},"messages":[{"role":"user","content":"Look","images":[%q]}]}`, img),
			func(m map[string]any) float64 { v, _ := m["prompt_eval_count"].(float64); return v }},
		{"ollama generate", "/api/generate", fmt.Sprintf(`{"model":"vision","stream":false,"prompt":"Look","images":[%q]}`, img),
			func(m map[string]any) float64 { v, _ := m["prompt_eval_count"].(float64); return v }},
		{"inference", "/inference", fmt.Sprintf(`{"model":"vision","prompt":"Look","temperature":0,"images":[%q]}`, img),
			func(m map[string]any) float64 {
				u, _ := m["usage"].(map[string]any)
				v, _ := u["image_tokens"].(float64)
				return v
			}},
		{"webp", "/inference", fmt.Sprintf(`{"model":"vision","prompt":"Look","images":["data:image/webp;base64,%s"]}`, imageB64(t, "gradient.webp")),
			func(m map[string]any) float64 {
				u, _ := m["usage"].(map[string]any)
				v, _ := u["image_tokens"].(float64)
				return v
			}},
		{"inference data URL", "/inference", fmt.Sprintf(`{"model":"vision","prompt":"Look","images":["data:image/png;base64,%s"]}`, img),
			func(m map[string]any) float64 {
				u, _ := m["usage"].(map[string]any)
				v, _ := u["image_tokens"].(float64)
				return v
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, e.url+tc.path, tc.body)
			if a.Status != 200 {
				t.Fatalf("status %d: %s", a.Status, a.Body)
			}
			if n := tc.count(a.JSON); n < 64 {
				t.Fatalf("image tokens not counted (%v): %s", n, a.Body)
			}
		})
	}
}

// TestVisionAdvertised: clients find out which models take images.
func TestVisionAdvertised(t *testing.T) {
	e := visionServer(t)
	for model, want := range map[string]bool{"vision": true, "story": false} {
		show := post(t, e.url+"/api/show", fmt.Sprintf(`{"model":%q}`, model))
		caps := fmt.Sprint(show.JSON["capabilities"])
		if strings.Contains(caps, "vision") != want {
			t.Errorf("%s: /api/show capabilities %s", model, caps)
		}
		props := do(t, "GET", e.url+"/props?model="+model, "")
		mod, _ := props.JSON["modalities"].(map[string]any)
		if mod["vision"] != want {
			t.Errorf("%s: /props modalities %v", model, mod)
		}
	}
}

// TestVisionBombAllocatesNothing: an image whose header claims
// 60000×60000 pixels (3.6 billion, 10 GB of RGB) is refused from its
// header; twenty of them allocate almost nothing in the daemon.
func TestVisionBombAllocatesNothing(t *testing.T) {
	e := visionServer(t)
	body := chatWithImage("vision", "Hi", "data:image/png;base64,"+imageB64(t, "bomb-header.png"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 20 {
		if a := post(t, e.url+"/v1/chat/completions", body); a.Status != 413 {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Fatalf("20 refused bombs allocated %d bytes", d)
	}
}

func TestVisionErrors(t *testing.T) {
	e := visionServer(t)
	img := imageB64(t, "gradient.png")
	url := func(b64 string) string { return "data:image/png;base64," + b64 }
	for _, tc := range []struct {
		name, path, body string
		status           int
		code, msg        string
	}{
		{"model without projector", "/v1/chat/completions", chatWithImage("story", "Hi", url(img)), 400, "model_not_vision", `model "story" takes no images: it has no projector; set mmproj`},
		{"corrupt", "/v1/chat/completions", chatWithImage("vision", "Hi", url(imageB64(t, "truncated.png"))), 400, "invalid_image", "image 1: encode image: image could not be decoded"},
		{"not base64", "/v1/chat/completions", chatWithImage("vision", "Hi", "data:image/png;base64,@@@"), 400, "invalid_image", "not valid base64"},
		{"bomb header", "/v1/chat/completions", chatWithImage("vision", "Hi", url(imageB64(t, "bomb-header.png"))), 413, "image_too_large", "60000×60000 is 3600000000 pixels, more than the limit of 100000 (server.max_image_pixels)"},
		{"over the pixel limit", "/inference", fmt.Sprintf(`{"model":"vision","prompt":"Hi","images":[%q]}`, pngOf(t, 400, 300)), 413, "image_too_large", "server.max_image_pixels"},
		{"remote URL", "/v1/chat/completions", chatWithImage("vision", "Hi", "https://example.com/cat.png"), 400, "image_url_not_allowed", "server.fetch_images"},
		{"more image tokens than the context", "/inference", fmt.Sprintf(`{"model":"vision","prompt":"Hi","images":[%q,%q,%q]}`, img, img, img), 400, "context_overflow", "3 image(s) of 64 tokens"},
		{"unknown part", "/v1/chat/completions", `{"model":"vision","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, 400, "invalid_request", "text and image_url"},
		{"ollama images not strings", "/api/chat", `{"model":"vision","messages":[{"role":"user","content":"x","images":[1]}]}`, 400, "", "messages[0].images[0] must be a base64 string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, e.url+tc.path, tc.body)
			if strings.HasPrefix(tc.path, "/api/") {
				if a.Status != tc.status || !strings.Contains(string(a.Body), tc.msg) {
					t.Fatalf("status %d %s, want %d with %q", a.Status, a.Body, tc.status, tc.msg)
				}
				return
			}
			wantError(t, a, tc.status, tc.code)
			if !strings.Contains(str(a.JSON, "error", "message"), tc.msg) {
				t.Fatalf("message %s does not say %q", a.Body, tc.msg)
			}
		})
	}
}
