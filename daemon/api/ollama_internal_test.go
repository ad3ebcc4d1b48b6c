package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseKeepAlive(t *testing.T) {
	cases := []struct {
		in   string
		want keepAlive
		bad  bool
	}{
		{``, keepAlive{}, false},
		{`null`, keepAlive{}, false},
		{`0`, keepAlive{set: true}, false},
		{`"0"`, keepAlive{set: true}, false},
		{`"0s"`, keepAlive{set: true}, false},
		{`300`, keepAlive{set: true, d: 5 * time.Minute}, false},
		{`"300"`, keepAlive{set: true, d: 5 * time.Minute}, false},
		{`"5m"`, keepAlive{set: true, d: 5 * time.Minute}, false},
		{`1.5`, keepAlive{set: true, d: 1500 * time.Millisecond}, false},
		{`-1`, keepAlive{set: true, d: -1}, false},
		{`"-1"`, keepAlive{set: true, d: -1}, false},
		{`"-1m"`, keepAlive{set: true, d: -1}, false},
		{`1e300`, keepAlive{set: true, d: time.Duration(1<<63 - 1).Truncate(time.Second)}, false},
		{`"soon"`, keepAlive{}, true},
		{`true`, keepAlive{}, true},
		{`{}`, keepAlive{}, true},
	}
	for _, c := range cases {
		got, e := parseKeepAlive(json.RawMessage(c.in))
		if (e != nil) != c.bad || got != c.want {
			t.Errorf("parseKeepAlive(%s) = %+v, %v; want %+v, bad %v", c.in, got, e, c.want, c.bad)
		}
		if e != nil && e.Param != "keep_alive" {
			t.Errorf("parseKeepAlive(%s): param %q", c.in, e.Param)
		}
	}
}

func TestFormatSchema(t *testing.T) {
	for in, want := range map[string]string{``: ``, `null`: ``, `""`: ``, `"json"`: anyJSONObject, `{"type": "integer"}`: `{"type": "integer"}`} {
		got, e := formatSchema(json.RawMessage(in))
		if e != nil || string(got) != want {
			t.Errorf("formatSchema(%s) = %s, %v; want %s", in, got, e, want)
		}
	}
	for _, in := range []string{`"xml"`, `3`, `[1]`, `true`} {
		if _, e := formatSchema(json.RawMessage(in)); e == nil || e.Param != "format" {
			t.Errorf("formatSchema(%s): %v, want a 400 on format", in, e)
		}
	}
}

func TestOllamaOptionsMapping(t *testing.T) {
	var o ollamaOptions
	if err := json.Unmarshal([]byte(`{"num_predict": -1, "temperature": 0.5, "top_k": 7, "seed": 3, "stop": "x", "num_gpu": 99, "num_ctx": 8192}`), &o); err != nil {
		t.Fatal(err)
	}
	f, e := o.fields(nil)
	if e != nil || *f.MaxTokens != unlimited || *f.Temperature != 0.5 || *f.TopK != 7 || *f.Seed != 3 || len(f.Stop) != 1 {
		t.Fatalf("fields: %+v %v", f, e)
	}
	bad := ollamaOptions{TopP: new(2.0)}
	if _, e := bad.fields(nil); e == nil || e.Param != "options.top_p" {
		t.Fatalf("top_p 2: %v", e)
	}
}
