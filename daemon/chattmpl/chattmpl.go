package chattmpl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ardanlabs/jinja"
)

// ToolCall is a call an assistant message made: OpenAI's shape.
type ToolCall struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name string `json:"name"`
		// Arguments is the JSON text of the arguments, as OpenAI sends
		// it. Templates see it decoded (an object), as Hugging Face's
		// transformers pass it, so that `arguments | tojson` prints JSON
		// and not a quoted string.
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Message is one chat turn.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// Input is what a template renders.
type Input struct {
	Messages []Message
	// Tools is the request's tools array as JSON ([{"type": "function",
	// "function": {...}}]); its key order is kept, since templates print
	// the schemas with tojson. nil or empty: no tools.
	Tools               json.RawMessage
	AddGenerationPrompt bool
	BOSToken, EOSToken  string
	// Now is the time strftime_now formats; zero is the current time.
	Now time.Time
}

// ErrRender wraps a template that does not compile or that fails on this
// input (raise_exception, a missing key the template needs).
var ErrRender = errors.New("chat template")

// Template is a compiled chat template; it is safe for concurrent use.
type Template struct {
	src  string
	tmpl *jinja.Template
}

var cache sync.Map // source → *Template

// Compile compiles src, once per distinct source text.
func Compile(src string) (*Template, error) {
	if t, ok := cache.Load(src); ok {
		return t.(*Template), nil
	}
	jt, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRender, err)
	}
	t := &Template{src: src, tmpl: jt}
	cache.Store(src, t)
	return t, nil
}

// Source is the template's text.
func (t *Template) Source() string { return t.src }

// SupportsTools reports whether the template renders the tools it is
// given: it reads a `tools` variable. A template that does not would drop
// them silently, and the model would never see what it may call.
func (t *Template) SupportsTools() bool { return referencesTools(t.src) }

func referencesTools(src string) bool {
	for s := src; ; {
		i := strings.Index(s, "tools")
		if i < 0 {
			return false
		}
		before, after := byte(' '), byte(' ')
		if i > 0 {
			before = s[i-1]
		}
		if i+5 < len(s) {
			after = s[i+5]
		}
		if !isIdent(before) && !isIdent(after) {
			return true
		}
		s = s[i+5:]
	}
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Render renders in.
func (t *Template) Render(in Input) (string, error) {
	msgs := make([]jinja.Value, len(in.Messages))
	for i, m := range in.Messages {
		v, err := messageValue(m)
		if err != nil {
			return "", fmt.Errorf("messages[%d]: %w", i, err)
		}
		msgs[i] = v
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	data := map[string]jinja.Value{
		"messages":              jinja.NewList(msgs),
		"add_generation_prompt": jinja.NewBool(in.AddGenerationPrompt),
		"bos_token":             jinja.NewString(in.BOSToken),
		"eos_token":             jinja.NewString(in.EOSToken),
		"strftime_now": jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			format := "%Y-%m-%d"
			if len(args) > 0 && args[0].IsString() {
				format = args[0].AsString()
			}
			return jinja.NewString(Strftime(now, format)), nil
		}),
	}
	if len(bytes.TrimSpace(in.Tools)) > 0 && !bytes.Equal(bytes.TrimSpace(in.Tools), []byte("null")) {
		tools, err := JSONValue(in.Tools)
		if err != nil {
			return "", fmt.Errorf("tools: %w", err)
		}
		if tools.IsList() && tools.AsList().Len() > 0 {
			data["tools"] = tools
		}
	}
	out, err := t.tmpl.RenderValues(data)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrRender, err)
	}
	return out, nil
}

func messageValue(m Message) (jinja.Value, error) {
	d := jinja.NewDict()
	dd := d.AsDict()
	dd.Set("role", jinja.NewString(m.Role))
	if m.Content == "" && len(m.ToolCalls) > 0 {
		// OpenAI sends null content with tool calls; templates test it
		// for truth or concatenate it, and "" serves both.
		dd.Set("content", jinja.NewString(""))
	} else {
		dd.Set("content", jinja.NewString(m.Content))
	}
	if m.Name != "" {
		dd.Set("name", jinja.NewString(m.Name))
	}
	if m.ToolCallID != "" {
		dd.Set("tool_call_id", jinja.NewString(m.ToolCallID))
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]jinja.Value, len(m.ToolCalls))
		for i, c := range m.ToolCalls {
			args := jinja.NewDict()
			if s := strings.TrimSpace(c.Function.Arguments); s != "" {
				v, err := JSONValue([]byte(s))
				if err != nil {
					return jinja.Value{}, fmt.Errorf("tool_calls[%d].function.arguments is not JSON: %w", i, err)
				}
				args = v
			}
			fn := jinja.NewDict()
			fn.AsDict().Set("name", jinja.NewString(c.Function.Name))
			fn.AsDict().Set("arguments", args)
			call := jinja.NewDict()
			typ := c.Type
			if typ == "" {
				typ = "function"
			}
			if c.ID != "" {
				call.AsDict().Set("id", jinja.NewString(c.ID))
			}
			call.AsDict().Set("type", jinja.NewString(typ))
			call.AsDict().Set("function", fn)
			calls[i] = call
		}
		dd.Set("tool_calls", jinja.NewList(calls))
	}
	return d, nil
}

// JSONValue decodes JSON into template values, keeping object key order
// (Python dicts keep it, and templates print schemas with tojson).
func JSONValue(b []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return jinja.Value{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jinja.Value{}, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (jinja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return jinja.Value{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return jinja.Value{}, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Value{}, err
				}
				d.AsDict().Set(k.(string), v)
			}
			_, err := dec.Token()
			return d, err
		case '[':
			var items []jinja.Value
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Value{}, err
				}
				items = append(items, v)
			}
			_, err := dec.Token()
			return jinja.NewList(items), err
		}
		return jinja.Value{}, fmt.Errorf("unexpected %v", t)
	default:
		return jinja.FromGoValue(tok), nil
	}
}

// Strftime formats t with the Python strftime directives chat templates
// use (%d %b %Y and the like).
func Strftime(t time.Time, format string) string {
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			sb.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			sb.WriteString(t.Format("2006"))
		case 'y':
			sb.WriteString(t.Format("06"))
		case 'm':
			sb.WriteString(t.Format("01"))
		case 'd':
			sb.WriteString(t.Format("02"))
		case 'e':
			fmt.Fprintf(&sb, "%2d", t.Day())
		case 'b':
			sb.WriteString(t.Format("Jan"))
		case 'B':
			sb.WriteString(t.Format("January"))
		case 'a':
			sb.WriteString(t.Format("Mon"))
		case 'A':
			sb.WriteString(t.Format("Monday"))
		case 'H':
			sb.WriteString(t.Format("15"))
		case 'I':
			sb.WriteString(t.Format("03"))
		case 'M':
			sb.WriteString(t.Format("04"))
		case 'S':
			sb.WriteString(t.Format("05"))
		case 'p':
			sb.WriteString(t.Format("PM"))
		case 'j':
			fmt.Fprintf(&sb, "%03d", t.YearDay())
		case '%':
			sb.WriteByte('%')
		default:
			sb.WriteByte('%')
			sb.WriteByte(format[i])
		}
	}
	return sb.String()
}
