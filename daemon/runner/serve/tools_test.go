package serve

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/toolcall"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// The lazy grammar of tool_choice auto: free text passes; once the output
// reaches the trigger, a sampler with the call grammar takes over, having
// taken the trigger's tokens, and refuses what is no call.
func TestLazyGrammar(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "chattmpl", "testdata", "templates", "qwen2.5.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	spec := modelgen.Tiny()
	spec.ChatTemplate = string(src)
	m, err := engine.Load(context.Background(), testmodel.Gen(t, spec), engine.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tools, err := toolcall.ParseTools(json.RawMessage(`[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := toolcall.BuildGrammar(toolcall.Hermes, tools, toolcall.Choice{Mode: toolcall.ChoiceAuto}, false, engine.SchemaToGrammar)
	if err != nil || !g.Lazy {
		t.Fatal(g, err)
	}
	toks := func(s string) []int {
		t.Helper()
		ts, err := m.Tokenize(s, false)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	newLazy := func() *lazyGrammar {
		return &lazyGrammar{gbnf: g.GBNF, trigger: toolcall.Hermes.Trigger()}
	}

	lz := newLazy()
	var smp *engine.Sampler
	for _, tok := range toks("Let me look.<tool_call>") {
		if smp != nil {
			t.Fatal("the grammar took over before the trigger was complete")
		}
		if smp, err = lz.observe(m, tok); err != nil {
			t.Fatal(err)
		}
	}
	if smp == nil {
		t.Fatal("the trigger did not start the grammar")
	}
	if smp.Replay(toks("hello")) {
		t.Error("after <tool_call> the grammar allows free text")
	}
	smp.Close()

	lz = newLazy()
	for _, tok := range toks("Let me look.<tool_call>") {
		if smp, _ = lz.observe(m, tok); smp != nil {
			break
		}
	}
	if !smp.Replay(toks(`{"name": "f", "arguments": {"a": 12}}`)) { // SentencePiece adds the leading space
		t.Error("the grammar refuses a valid call")
	}
	smp.Close()

	lz = newLazy()
	for _, tok := range toks("No call here, just prose about tool calls.") {
		if smp, _ := lz.observe(m, tok); smp != nil {
			t.Fatal("prose started the grammar")
		}
	}
}
