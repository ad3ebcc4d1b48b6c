package toolcall

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type result struct {
	content string
	calls   []Call
}

// assemble feeds out in pieces of n bytes (0: whole) and rebuilds what a
// client would from the deltas, checking the deltas' order.
func assemble(t *testing.T, f Format, out string, n int) result {
	t.Helper()
	p := NewParser(f)
	var r result
	apply := func(ds []Delta) {
		for _, d := range ds {
			if !d.Call {
				r.content += d.Content
				continue
			}
			if d.Start {
				if d.Index != len(r.calls) || d.ID == "" || d.Name == "" || d.Arguments != "" {
					t.Fatalf("bad start delta %+v after %d calls", d, len(r.calls))
				}
				r.calls = append(r.calls, Call{ID: d.ID, Name: d.Name})
				continue
			}
			if d.Index != len(r.calls)-1 {
				t.Fatalf("argument delta for call %d while call %d is open", d.Index, len(r.calls)-1)
			}
			r.calls[d.Index].Arguments += d.Arguments
		}
	}
	if n == 0 {
		apply(p.Feed(out))
	} else {
		for i := 0; i < len(out); i += n {
			apply(p.Feed(out[i:min(i+n, len(out))]))
		}
	}
	apply(p.Finish())
	if !reflect.DeepEqual(r.calls, p.Calls()) && !(len(r.calls) == 0 && len(p.Calls()) == 0) {
		t.Fatalf("assembled %+v, parser says %+v", r.calls, p.Calls())
	}
	for i := range r.calls {
		r.calls[i].ID = ""
	}
	return r
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       Format
		out     string
		content string
		calls   []Call
	}{
		{"hermes one", Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "", []Call{{Name: "get_weather", Arguments: `{"city": "Paris"}`}}},
		{"hermes text then two", Hermes, "Let me check.<tool_call>{\"name\":\"a\",\"arguments\":{\"x\":\"}{\\\"\"}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>", "Let me check.", []Call{{Name: "a", Arguments: `{"x":"}{\""}`}, {Name: "b", Arguments: `{}`}}},
		{"hermes keys swapped", Hermes, "<tool_call>{\"arguments\": {\"q\": 1}, \"name\": \"s\"}</tool_call>", "", []Call{{Name: "s", Arguments: `{"q":1}`}}},
		{"hermes plain text", Hermes, "No tools needed: 1 < 2.", "No tools needed: 1 < 2.", nil},
		{"hermes not a call", Hermes, "<tool_call>oops", "<tool_call>oops", nil},
		{"llama3 json", Llama3, " {\"name\": \"f\", \"parameters\": {\"a\": [1, {\"b\": 2}]}}", "", []Call{{Name: "f", Arguments: `{"a": [1, {"b": 2}]}`}}},
		{"llama3 python tag", Llama3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}", "", []Call{{Name: "f", Arguments: `{}`}}},
		{"llama3 text", Llama3, "Hello {there}", "Hello {there}", nil},
		{"mistral two", Mistral, "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {\"y\": \"z\"}}]", "", []Call{{Name: "a", Arguments: `{"x": 1}`}, {Name: "b", Arguments: `{"y": "z"}`}}},
		{"phi4", Phi4, "<|tool_call|>{\"name\": \"a\", \"arguments\": {\"k\": true}}<|/tool_call|>", "", []Call{{Name: "a", Arguments: `{"k": true}`}}},
		{"json", JSON, "{\"name\": \"a\", \"arguments\": {\"k\": null}}", "", []Call{{Name: "a", Arguments: `{"k": null}`}}},
	} {
		for _, n := range []int{0, 1, 3, 7} {
			got := assemble(t, tc.f, tc.out, n)
			if got.content != tc.content || !reflect.DeepEqual(got.calls, tc.calls) {
				t.Errorf("%s (pieces of %d): got %q %+v, want %q %+v", tc.name, n, got.content, got.calls, tc.content, tc.calls)
			}
		}
	}
}

// The first delta of a call comes as soon as its name is known, before
// the arguments end: clients show calls as they form.
func TestParseStreamsArguments(t *testing.T) {
	p := NewParser(Hermes)
	ds := p.Feed(`<tool_call>{"name": "get_weather", "arguments": {"ci`)
	if len(ds) != 2 || !ds[0].Start || ds[0].Name != "get_weather" || ds[1].Arguments != `{"ci` {
		t.Fatalf("deltas %+v", ds)
	}
	ds = p.Feed(`ty": "Paris"}}</tool_call>`)
	if len(ds) != 1 || ds[0].Arguments != `ty": "Paris"}` {
		t.Fatalf("deltas %+v", ds)
	}
}

func TestDetect(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{{ tools }}<tool_call>":         "hermes",
		"{{ tools }}[TOOL_CALLS]":        "mistral",
		"{{ tools }}<|tool_call|>":       "phi4",
		"{{ tools }}<|start_header_id|>": "llama3",
		"{{ tools }}<start_of_turn>":     "json",
	} {
		f, ok := Detect(tmpl, true)
		if !ok || f.Name != want {
			t.Errorf("Detect(%q) = %q, want %q", tmpl, f.Name, want)
		}
	}
	if _, ok := Detect("<start_of_turn>", false); ok {
		t.Error("a template without tools must not be given a format")
	}
}

func TestParseTools(t *testing.T) {
	good := `[{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}, {"type": "function", "function": {"name": "b"}}]`
	tools, err := ParseTools(json.RawMessage(good))
	if err != nil || len(tools) != 2 || string(tools[1].Parameters) != `{"type": "object", "properties": {}}` {
		t.Fatalf("%+v %v", tools, err)
	}
	for raw, field := range map[string]string{
		`{}`:                             "tools",
		`[{"type": "code_interpreter"}]`: "tools[0].type",
		`[{"type": "function"}]`:         "tools[0].function",
		`[{"type": "function", "function": {"name": "a b"}}]`:                                                "tools[0].function.name",
		`[{"type": "function", "function": {"name": "a", "parameters": [1]}}]`:                               "tools[0].function.parameters",
		`[{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "a"}}]`: "tools[1].function.name",
	} {
		_, err := ParseTools(json.RawMessage(raw))
		var te *Error
		if !errors.As(err, &te) || te.Field != field {
			t.Errorf("ParseTools(%s) = %v, want an error on %s", raw, err, field)
		}
	}
}

func TestParseChoice(t *testing.T) {
	tools := []Tool{{Name: "a"}, {Name: "b"}}
	for raw, want := range map[string]Choice{
		``:           {Mode: ChoiceAuto},
		`"none"`:     {Mode: ChoiceNone},
		`"required"`: {Mode: ChoiceRequired},
		`{"type": "function", "function": {"name": "b"}}`: {Mode: ChoiceFunction, Name: "b"},
	} {
		got, err := ParseChoice(json.RawMessage(raw), tools)
		if err != nil || got != want {
			t.Errorf("ParseChoice(%s) = %+v, %v", raw, got, err)
		}
	}
	for raw, field := range map[string]string{
		`"sometimes"`: "tool_choice",
		`{"type": "function", "function": {"name": "zz"}}`: "tool_choice.function.name",
		`{"type": "function"}`:                             "tool_choice",
	} {
		_, err := ParseChoice(json.RawMessage(raw), tools)
		var te *Error
		if !errors.As(err, &te) || te.Field != field {
			t.Errorf("ParseChoice(%s) = %v, want an error on %s", raw, err, field)
		}
	}
	if _, err := ParseChoice(json.RawMessage(`"required"`), nil); err == nil {
		t.Error("required without tools must be refused")
	}
}

func TestCheckMessages(t *testing.T) {
	ok := []Message{{Role: "user"}, {Role: "assistant", CallIDs: []string{"c1"}}, {Role: "tool", ToolCallID: "c1"}}
	if err := CheckMessages(ok); err != nil {
		t.Fatal(err)
	}
	bad := []Message{{Role: "user"}, {Role: "tool", ToolCallID: "c9"}}
	var te *Error
	if err := CheckMessages(bad); !errors.As(err, &te) || te.Field != "messages[1].tool_call_id" {
		t.Fatalf("err = %v", err)
	}
}

func TestBuildGrammar(t *testing.T) {
	tools := []Tool{{Name: "a", Parameters: json.RawMessage(`{"type": "object"}`)}, {Name: "b", Parameters: json.RawMessage(`{"type": "object"}`)}}
	var schemas []string
	conv := func(s string) (string, error) {
		schemas = append(schemas, s)
		if strings.Contains(s, `"bad"`) {
			return "", errors.New("cannot")
		}
		return "root ::= \"{}\"", nil
	}
	g, err := BuildGrammar(Hermes, tools, Choice{Mode: ChoiceFunction, Name: "b"}, true, conv)
	if err != nil || g.Lazy {
		t.Fatal(g, err)
	}
	if !strings.Contains(g.GBNF, "tool-call ::= \"{}\"") || !strings.HasPrefix(g.GBNF, `root ::= tool-block`) {
		t.Fatalf("grammar:\n%s", g.GBNF)
	}
	last := schemas[len(schemas)-1]
	if strings.Contains(last, `"a"`) || !strings.Contains(last, `{"const": "b"}`) {
		t.Fatalf("a named choice must allow only that tool: %s", last)
	}
	g, _ = BuildGrammar(Hermes, tools, Choice{Mode: ChoiceAuto}, false, conv)
	if !g.Lazy || strings.Contains(g.GBNF, "tool-block") {
		t.Fatalf("auto without parallel calls: %+v", g)
	}
	if g, _ := BuildGrammar(Hermes, tools, Choice{Mode: ChoiceNone}, true, conv); g.GBNF != "" {
		t.Fatal("none must not constrain")
	}
	tools[1].Parameters = json.RawMessage(`{"type": "bad"}`)
	_, err = BuildGrammar(Mistral, tools, Choice{Mode: ChoiceRequired}, true, conv)
	var te *Error
	if !errors.As(err, &te) || te.Field != "tools[1].function.parameters" {
		t.Fatalf("err = %v", err)
	}
}
