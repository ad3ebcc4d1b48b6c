package toolcall

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

// Error is a request's mistake about tools. Field names the request field
// at fault (tools[1].function.parameters, tool_choice, messages[3]).
type Error struct {
	Field string
	Msg   string
	// Code is the error's code: invalid_request_error for a malformed
	// request, tools_unsupported for a model that cannot take tools.
	Code string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...), Code: "invalid_request_error"}
}

// Tool is one declared function.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON schema of the arguments ({"type": "object"}
	// when the tool declares none).
	Parameters json.RawMessage
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// ParseTools reads an OpenAI tools array.
func ParseTools(raw json.RawMessage) ([]Tool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var in []struct {
		Type     string `json:"type"`
		Function *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, errorf("tools", "tools must be an array of {\"type\": \"function\", \"function\": {...}}: %v", err)
	}
	seen := map[string]int{}
	out := make([]Tool, len(in))
	for i, t := range in {
		f := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, errorf(f+".type", "tool type %q is not supported; only \"function\"", t.Type)
		}
		if t.Function == nil {
			return nil, errorf(f+".function", "missing; give {\"name\": ..., \"parameters\": {...}}")
		}
		if !nameRE.MatchString(t.Function.Name) {
			return nil, errorf(f+".function.name", "%q is not a valid function name (1 to 64 of a-z, A-Z, 0-9, _, ., -)", t.Function.Name)
		}
		if j, dup := seen[t.Function.Name]; dup {
			return nil, errorf(f+".function.name", "%q is declared twice (also tools[%d])", t.Function.Name, j)
		}
		seen[t.Function.Name] = i
		params := bytes.TrimSpace(t.Function.Parameters)
		if len(params) == 0 || bytes.Equal(params, []byte("null")) {
			params = json.RawMessage(`{"type": "object", "properties": {}}`)
		} else {
			var obj map[string]json.RawMessage
			if json.Unmarshal(params, &obj) != nil {
				return nil, errorf(f+".function.parameters", "must be a JSON schema object")
			}
		}
		out[i] = Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: params}
	}
	return out, nil
}

// Choice modes.
const (
	ChoiceAuto     = "auto"
	ChoiceNone     = "none"
	ChoiceRequired = "required"
	ChoiceFunction = "function" // one named function
)

// Choice is a parsed tool_choice.
type Choice struct {
	Mode string
	Name string // with ChoiceFunction
}

// ParseChoice reads tool_choice: "auto", "none", "required" or
// {"type": "function", "function": {"name": ...}}, which must name a
// declared tool. Absent, it is auto with tools and none without.
func ParseChoice(raw json.RawMessage, tools []Tool) (Choice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		if len(tools) == 0 {
			return Choice{Mode: ChoiceNone}, nil
		}
		return Choice{Mode: ChoiceAuto}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case ChoiceAuto, ChoiceNone, ChoiceRequired:
		default:
			return Choice{}, errorf("tool_choice", "%q is not one of auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}", s)
		}
		if s != ChoiceNone && len(tools) == 0 {
			return Choice{}, errorf("tool_choice", "%q needs tools; the request declares none", s)
		}
		return Choice{Mode: s}, nil
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &named); err != nil || named.Type != "function" || named.Function.Name == "" {
		return Choice{}, errorf("tool_choice", "must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}")
	}
	for _, t := range tools {
		if t.Name == named.Function.Name {
			return Choice{Mode: ChoiceFunction, Name: t.Name}, nil
		}
	}
	return Choice{}, errorf("tool_choice.function.name", "%q is not one of the request's tools", named.Function.Name)
}

// Message is what CheckMessages needs of a chat turn.
type Message struct {
	Role       string
	ToolCallID string
	CallIDs    []string // the ids of an assistant message's tool_calls
}

// CheckMessages checks that every tool message answers a call an earlier
// assistant message made.
func CheckMessages(msgs []Message) error {
	calls := map[string]bool{}
	for i, m := range msgs {
		for _, id := range m.CallIDs {
			calls[id] = true
		}
		if m.Role != "tool" {
			continue
		}
		if m.ToolCallID == "" {
			return errorf(fmt.Sprintf("messages[%d].tool_call_id", i), "a tool message needs the tool_call_id of the call it answers")
		}
		if !calls[m.ToolCallID] {
			return errorf(fmt.Sprintf("messages[%d].tool_call_id", i), "%q matches no tool_calls[].id of an earlier assistant message", m.ToolCallID)
		}
	}
	return nil
}
