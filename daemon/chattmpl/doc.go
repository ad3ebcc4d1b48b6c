// Package chattmpl renders chat conversations with a model's own Jinja chat
// template (the GGUF's tokenizer.chat_template, the same text as the
// chat_template of its Hugging Face tokenizer_config.json): messages, tools,
// assistant tool calls and tool results, the generation prompt, and the
// globals real templates use (bos_token, eos_token, raise_exception,
// strftime_now, tojson).
//
// It owns the template evaluation and the conversion of OpenAI-shaped
// messages into the values templates read. It does not tokenize, sample
// or parse model output (package toolcall parses calls), and it links no
// cgo, so the daemon and the runner can both use it.
package chattmpl
