package api

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "new\nline\ttab\r", "\x00\x01\x1f\x7f", "héllo wörld ✓ 🙂",
		"bad \xff utf8 \xe2\x82", "line\u2028sep\u2029", "<a href='x'>&</a>"} {
		got := string(appendJSONString(nil, s))
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("%q → %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// The per-token path allocates nothing: one reused buffer, one Write, one
// Flush.
func TestStreamChunkAllocations(t *testing.T) {
	st := newSSE(&statusWriter{ResponseWriter: &discardWriter{h: http.Header{}}})
	st.prefix = []byte(`data: {"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":`)
	st.suffix = []byte(`},"finish_reason":null}]}` + "\n\n")
	st.text("warm up")
	if n := testing.AllocsPerRun(1000, func() { st.text(" token\n") }); n != 0 {
		t.Fatalf("%v allocations per chunk", n)
	}
}
