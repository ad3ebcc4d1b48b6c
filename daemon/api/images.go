package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	_ "image/gif" // formats whose header image.DecodeConfig reads
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/image/webp"

	"github.com/jetai/jetai/config"
)

// imageRef is an image as a request gives it: a URL (a data: URL with
// base64 content, or an http(s) URL the daemon fetches only when
// server.fetch_images is on) or base64 bytes (Ollama's images).
type imageRef struct {
	URL    string
	Base64 string
}

// imageFormats are the formats the runner's decoder (llama.cpp's
// stb_image) reads. WebP is not among them: the daemon decodes it and
// hands the runner a PNG.
var imageFormats = map[string]bool{"png": true, "jpeg": true, "gif": true}

// fetchTimeout bounds the download of one image URL.
const fetchTimeout = 30 * time.Second

// loadImages turns a request's image references into checked image files
// for the runner: each one decoded from base64 (or fetched), its format
// and dimensions read from its header and checked against
// server.max_image_pixels before anything decodes its pixels, so a small
// file that claims a huge image (a decompression bomb) costs nothing.
func (s *Server) loadImages(ctx context.Context, refs []imageRef) ([][]byte, *Error) {
	if len(refs) == 0 {
		return nil, nil
	}
	cfg := s.cfg().Server
	out := make([][]byte, 0, len(refs))
	for i, r := range refs {
		b, e := s.imageBytes(ctx, cfg, r, i)
		if e != nil {
			return nil, e
		}
		b, e = checkImage(b, cfg.MaxImagePixels, i)
		if e != nil {
			return nil, e
		}
		out = append(out, b)
	}
	return out, nil
}

func invalidImage(i int, format string, args ...any) *Error {
	e := badRequest("images", "image %d: "+format, append([]any{i + 1}, args...)...)
	e.Code = "invalid_image"
	return e
}

func (s *Server) imageBytes(ctx context.Context, cfg config.Server, r imageRef, i int) ([]byte, *Error) {
	switch u := strings.TrimSpace(r.URL); {
	case r.URL == "":
		return decodeBase64(r.Base64, i)
	case strings.HasPrefix(u, "data:"):
		meta, data, ok := strings.Cut(u[len("data:"):], ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, invalidImage(i, "a data: URL must be data:image/...;base64,<data>")
		}
		if !strings.HasPrefix(meta, "image/") {
			return nil, invalidImage(i, "the data: URL's type %q is not an image type", strings.TrimSuffix(meta, ";base64"))
		}
		return decodeBase64(data, i)
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		if !cfg.FetchImages {
			e := invalidImage(i, "image URLs are not fetched (server.fetch_images is false); send the image inline as a data:image/...;base64 URL")
			e.Code = "image_url_not_allowed"
			return nil, e
		}
		return fetchImage(ctx, u, int64(cfg.MaxBody), i)
	default:
		return nil, invalidImage(i, "the image URL must be a data: URL (or http(s) with server.fetch_images on)")
	}
}

func decodeBase64(s string, i int) ([]byte, *Error) {
	s = strings.TrimSpace(s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some clients send URL-safe or unpadded base64.
		if b2, err2 := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err2 == nil {
			return b2, nil
		}
		if b2, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "=")); err2 == nil {
			return b2, nil
		}
		return nil, invalidImage(i, "not valid base64: %v", err)
	}
	return b, nil
}

// fetchImage downloads an image URL, at most limit bytes.
func fetchImage(ctx context.Context, url string, limit int64, i int) ([]byte, *Error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, invalidImage(i, "bad URL: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e := invalidImage(i, "fetching %s: %v", url, err)
		e.Status, e.Code = http.StatusBadGateway, "image_fetch_failed"
		return nil, e
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := invalidImage(i, "fetching %s: %s", url, resp.Status)
		e.Status, e.Code = http.StatusBadGateway, "image_fetch_failed"
		return nil, e
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		e := invalidImage(i, "fetching %s: %v", url, err)
		e.Status, e.Code = http.StatusBadGateway, "image_fetch_failed"
		return nil, e
	}
	if int64(len(b)) > limit {
		return nil, imageTooLarge(i, fmt.Sprintf("the image at %s is larger than %d bytes (server.max_body)", url, limit))
	}
	return b, nil
}

func imageTooLarge(i int, why string) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "image_too_large", Param: "images",
		Message: fmt.Sprintf("image %d: %s", i+1, why)}
}

// checkImage reads the image's header and refuses what is not an image,
// a format the runner cannot read, or more than maxPixels pixels. A WebP
// image is decoded here (after the check) and returned as PNG.
func checkImage(b []byte, maxPixels int64, i int) ([]byte, *Error) {
	if len(b) == 0 {
		return nil, invalidImage(i, "empty")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, invalidImage(i, "not a PNG, JPEG, GIF or WebP image (%v)", err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, invalidImage(i, "its header says %d×%d pixels", cfg.Width, cfg.Height)
	} else if px > maxPixels {
		return nil, imageTooLarge(i, fmt.Sprintf("%d×%d is %d pixels, more than the limit of %d (server.max_image_pixels)", cfg.Width, cfg.Height, px, maxPixels))
	}
	if imageFormats[format] {
		return b, nil
	}
	if format != "webp" {
		return nil, invalidImage(i, "format %s is not supported (PNG, JPEG, GIF, WebP)", format)
	}
	img, err := webp.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, invalidImage(i, "WebP: %v", err)
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, invalidImage(i, "WebP: %v", err)
	}
	return out.Bytes(), nil
}

// noVision is the answer to images sent to a model without a projector.
func noVision(model string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "model_not_vision", Param: "images",
		Message: fmt.Sprintf("model %q takes no images: it has no projector; set mmproj in its model block to the vision model's projector file", model)}
}
