// Package toolcall turns a request's tools into what the model needs to
// call them and turns the model's output back into calls: it validates
// tools and tool_choice, picks the call syntax of the model's family from
// its chat template, builds the GBNF grammar that constrains a call (the
// tools' JSON schemas, converted by the engine, inside the family's
// wrapper), and parses generated text, streamed, into content and
// tool-call deltas.
//
// It does not render prompts (package chattmpl does), sample, or speak any
// wire format: the OpenAI and Ollama surfaces encode its deltas. It links
// no cgo; the schema-to-grammar conversion is passed in.
package toolcall
