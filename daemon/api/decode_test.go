package api

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// A type mistake in a field is reported under the field's JSON name, not
// the Go path through embedded structs that encoding/json puts in it.
func TestDecodeErrorNamesTheJSONField(t *testing.T) {
	cases := []struct {
		name      string
		v         any
		body      string
		param     string
		inMessage string
	}{
		{"inference max_tokens too big", &inferenceRequest{}, `{"prompt":"a","max_tokens":1e12}`, "max_tokens", `field "max_tokens": 1e12 is out of range`},
		{"inference prompt a number", &inferenceRequest{}, `{"prompt":5}`, "prompt", `field "prompt" must be a string, not number`},
		{"completion temperature a string", &completionRequest{}, `{"model":"m","temperature":"hot"}`, "temperature", `field "temperature" must be a number, not string`},
		{"chat max_tokens a string", &chatRequest{}, `{"model":"m","max_tokens":"x"}`, "max_tokens", `field "max_tokens" must be a number`},
		{"chat nested include_usage", &chatRequest{}, `{"stream_options":{"include_usage":"yes"}}`, "stream_options.include_usage", `field "stream_options.include_usage" must be true or false`},
		{"chat message role", &chatRequest{}, `{"messages":[{"role":1}]}`, "messages.role", `field "messages.role" must be a string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			e := decodeBody(r, c.v, true)
			if e == nil {
				t.Fatalf("decoded %s without an error", c.body)
			}
			if e.Status != 400 || e.Param != c.param || !strings.Contains(e.Message, c.inMessage) {
				t.Errorf("got %d param %q message %q; want 400 param %q message containing %q", e.Status, e.Param, e.Message, c.param, c.inMessage)
			}
		})
	}
}
