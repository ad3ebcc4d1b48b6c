package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFetchImage(t *testing.T) {
	png, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "gradient.png"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cat.png" {
			http.NotFound(w, r)
			return
		}
		w.Write(png)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, path string
		limit      int64
		status     int
		code, msg  string
	}{
		{"fetched", "/cat.png", 1 << 20, 0, "", ""},
		{"not found", "/dog.png", 1 << 20, 502, "image_fetch_failed", "404"},
		{"over max_body", "/cat.png", 100, 413, "image_too_large", "larger than 100 bytes (server.max_body)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, e := fetchImage(context.Background(), srv.URL+tc.path, tc.limit, 0)
			if tc.status == 0 {
				if e != nil || string(b) != string(png) {
					t.Fatalf("got %d bytes, %v", len(b), e)
				}
				return
			}
			if e == nil || e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %+v, want %d %s with %q", e, tc.status, tc.code, tc.msg)
			}
		})
	}
}

func TestCheckImage(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		max       int64
		status    int
		format    string // of the bytes handed on
		code, msg string
	}{
		{"png", read("gradient.png"), 1 << 20, 0, "\x89PNG", "", ""},
		{"jpeg", read("checker.jpg"), 1 << 20, 0, "\xff\xd8", "", ""},
		{"webp becomes png", read("gradient.webp"), 1 << 20, 0, "\x89PNG", "", ""},
		{"exactly at the limit", read("gradient.png"), 64 * 48, 0, "\x89PNG", "", ""},
		{"one pixel over", read("gradient.png"), 64*48 - 1, 413, "", "image_too_large", "64×48 is 3072 pixels, more than the limit of 3071"},
		{"bomb", read("bomb-header.png"), 1 << 24, 413, "", "image_too_large", "server.max_image_pixels"},
		{"text", []byte("hello"), 1 << 20, 400, "", "invalid_image", "image 1: not a PNG, JPEG, GIF or WebP"},
		{"empty", nil, 1 << 20, 400, "", "invalid_image", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, e := checkImage(tc.data, tc.max, 0)
			if tc.status == 0 {
				if e != nil || !strings.HasPrefix(string(b), tc.format) {
					t.Fatalf("got %q…, %v", b[:min(len(b), 4)], e)
				}
				return
			}
			if e == nil || e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %+v, want %d %s with %q", e, tc.status, tc.code, tc.msg)
			}
		})
	}
}
