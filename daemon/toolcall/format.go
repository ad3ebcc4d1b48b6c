package toolcall

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Format is a model family's syntax for tool calls.
type Format struct {
	// Name: hermes (Qwen 2.5/3, Hermes, SmolLM3: <tool_call>…</tool_call>),
	// llama3 (a JSON object, optionally after <|python_tag|>), mistral
	// ([TOOL_CALLS] and a JSON array), phi4 (<|tool_call|>…<|/tool_call|>),
	// json (a bare JSON object: templates that take tools but name no
	// syntax of their own, such as Gemma or SmolLM fine-tunes).
	Name string
	// Open and Close wrap each call; an empty Open means the call is a
	// JSON object at the start of the output.
	Open, Close string
	// Alt is another opening a call may start with (llama3's
	// <|python_tag|>).
	Alt string
	// ArgsKey is the key of the arguments in the call object.
	ArgsKey string
	// Array: the calls are one JSON array after Open (mistral).
	Array bool
	// Parallel: the format can hold several calls in one answer.
	Parallel bool
}

var (
	Hermes  = Format{Name: "hermes", Open: "<tool_call>", Close: "</tool_call>", ArgsKey: "arguments", Parallel: true}
	Llama3  = Format{Name: "llama3", Alt: "<|python_tag|>", ArgsKey: "parameters"}
	Mistral = Format{Name: "mistral", Open: "[TOOL_CALLS]", ArgsKey: "arguments", Array: true, Parallel: true}
	Phi4    = Format{Name: "phi4", Open: "<|tool_call|>", Close: "<|/tool_call|>", ArgsKey: "arguments", Parallel: true}
	JSON    = Format{Name: "json", ArgsKey: "arguments"}
)

// Detect picks the call syntax a chat template teaches its model. ok is
// false for a template that does not render tools at all.
func Detect(template string, supportsTools bool) (Format, bool) {
	switch {
	case !supportsTools:
		return Format{}, false
	case strings.Contains(template, "<tool_call>"):
		return Hermes, true
	case strings.Contains(template, "[TOOL_CALLS]"):
		return Mistral, true
	case strings.Contains(template, "<|tool_call|>"):
		return Phi4, true
	case strings.Contains(template, "<|start_header_id|>") || strings.Contains(template, "<|python_tag|>"):
		return Llama3, true
	}
	return JSON, true
}

// Trigger is the text whose generation starts a call under tool_choice
// auto, when the lazy grammar takes over.
func (f Format) Trigger() string {
	if f.Open != "" {
		return f.Open
	}
	return "{"
}

// Anchored: a call can only start the output (it has no opening tag).
func (f Format) Anchored() bool { return f.Open == "" }

// Grammar is the constraint for one request's calls.
type Grammar struct {
	GBNF string
	// Lazy: the grammar applies only once the output reaches the
	// format's trigger (tool_choice auto); before that the model writes
	// freely.
	Lazy bool
}

// BuildGrammar builds the GBNF grammar for tools under choice. toGBNF
// converts a JSON schema (the engine's SchemaToGrammar). With choice none
// there is no grammar (zero Grammar). A schema the converter cannot
// express is an *Error naming tools[i].function.parameters.
func BuildGrammar(f Format, tools []Tool, choice Choice, parallel bool, toGBNF func(schema string) (string, error)) (Grammar, error) {
	if choice.Mode == ChoiceNone || len(tools) == 0 {
		return Grammar{}, nil
	}
	for i, t := range tools {
		if _, err := toGBNF(string(t.Parameters)); err != nil {
			return Grammar{}, errorf(fmt.Sprintf("tools[%d].function.parameters", i), "this JSON schema cannot be turned into a grammar: %v", err)
		}
	}
	allowed := tools
	if choice.Mode == ChoiceFunction {
		for _, t := range tools {
			if t.Name == choice.Name {
				allowed = []Tool{t}
			}
		}
	}
	var alts []string
	for _, t := range allowed {
		alts = append(alts, `{"type": "object", "properties": {"name": {"const": `+strconv.Quote(t.Name)+`}, `+
			strconv.Quote(f.ArgsKey)+`: `+string(t.Parameters)+`}, "required": ["name", `+strconv.Quote(f.ArgsKey)+`], "additionalProperties": false}`)
	}
	schema := alts[0]
	if len(alts) > 1 {
		schema = `{"anyOf": [` + strings.Join(alts, ", ") + `]}`
	}
	call, err := toGBNF(schema)
	if err != nil {
		return Grammar{}, errorf("tools", "the tools' schemas cannot be combined into a grammar: %v", err)
	}
	call = renameRoot(call, "tool-call")
	many := parallel && f.Parallel
	var root string
	switch {
	case f.Array:
		list := `"[" space tool-call "]"`
		if many {
			list = `"[" space tool-call ("," space tool-call)* "]"`
		}
		root = `root ::= ` + gbnfString(f.Open) + ` space ` + list + ` space`
	case f.Open != "":
		block := gbnfString(f.Open) + ` space tool-call space ` + gbnfString(f.Close)
		if many {
			root = `root ::= tool-block (space tool-block)* space` + "\n" + `tool-block ::= ` + block
		} else {
			root = `root ::= ` + block + ` space`
		}
	default:
		open := ``
		if f.Alt != "" {
			open = `(` + gbnfString(f.Alt) + `)? `
		}
		root = `root ::= [ \t\n]* ` + open + `tool-call`
	}
	return Grammar{GBNF: root + "\n" + call, Lazy: choice.Mode == ChoiceAuto}, nil
}

// renameRoot renames the converter's root rule, so that the wrapper can
// be the grammar's root.
func renameRoot(g, name string) string {
	lines := strings.Split(g, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "root ::=") {
			lines[i] = name + " ::=" + strings.TrimPrefix(l, "root ::=")
		}
	}
	return strings.Join(lines, "\n")
}

// gbnfString quotes s as a GBNF string literal.
func gbnfString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case '\n':
			sb.WriteString(`\n`)
		case '\t':
			sb.WriteString(`\t`)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// checkJSON reports whether s is one JSON value.
func checkJSON(s string) bool { return json.Valid([]byte(s)) }
