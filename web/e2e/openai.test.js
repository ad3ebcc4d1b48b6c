// The OpenAI wire format checked with the official `openai` client and the
// Vercel AI SDK (@ai-sdk/openai-compatible) against a real jetaid: chat,
// streamed chat, completions and embeddings.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, streamText } from "ai";
import { startClientDaemon, KEY, IMAGES } from "./clients.js";

let d, client, provider;
before(async () => {
  d = await startClientDaemon();
  client = new OpenAI({ baseURL: d.url + "/v1", apiKey: KEY, maxRetries: 0 });
  provider = createOpenAICompatible({ name: "jetai", baseURL: d.url + "/v1", apiKey: KEY, includeUsage: true });
});
after(async () => { await d?.stop(); });

test("openai: chat, whole and streamed, agree", async () => {
  // Greedy: the same text whole and streamed, whatever the random weights say.
  const req = { model: "chat", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "Hello" }], temperature: 0, max_tokens: 10 };
  const whole = await client.chat.completions.create(req);
  assert.equal(whole.object, "chat.completion");
  assert.equal(whole.choices[0].message.role, "assistant");
  const n = whole.usage.completion_tokens;
  assert.ok(n >= 1 && n <= 10, `completion_tokens ${n}`);
  assert.equal(whole.choices[0].finish_reason, n === 10 ? "length" : "stop");
  let text = "", usage;
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(usage.completion_tokens, n);
});

test("openai: completions, embeddings, models and errors", async () => {
  const c = await client.completions.create({ model: "gpt2", prompt: "Once upon a time", temperature: 0, max_tokens: 16 });
  assert.match(c.choices[0].text, /Lily/);
  const e = await client.embeddings.create({ model: "story", input: ["Once upon a time", "Lily"] });
  assert.equal(e.data.length, 2);
  assert.ok(e.data[0].embedding.length > 0);
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes("story") && ids.includes("chat"), ids.join(","));
  await assert.rejects(client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }),
    err => err.status === 404 && err.code === "model_not_found");
});

test("ai SDK: generateText and streamText", async () => {
  const model = provider.chatModel("chat");
  const req = { model, system: "be brief", prompt: "Hello", temperature: 0, maxOutputTokens: 8 };
  const g = await generateText(req);
  const n = g.usage.outputTokens;
  assert.ok(n >= 1 && n <= 8, `outputTokens ${n}`);
  assert.equal(g.finishReason, n === 8 ? "length" : "stop");
  const s = streamText(req);
  let text = "";
  for await (const part of s.textStream) text += part;
  assert.equal(text, g.text);
  assert.equal((await s.usage).outputTokens, n);
  const c = await generateText({ model: provider.completionModel("gpt2"), prompt: "Once upon a time", temperature: 0, maxOutputTokens: 16 });
  // The SDK wraps the prompt in its own "user:" framing, so the text is
  // not the bare prompt's continuation; the wire format is what is checked.
  assert.ok(c.text.length > 0);
  assert.equal(c.usage.outputTokens, 16);
});

test("openai: image_url parts reach the vision model", async () => {
  const ask = async image => {
    const content = [{ type: "text", text: "What is this?" }];
    if (image) content.unshift({ type: "image_url", image_url: { url: image } });
    return client.chat.completions.create({ model: "chat", messages: [{ role: "user", content }], temperature: 0, max_tokens: 8 });
  };
  const grad = "data:image/png;base64," + IMAGES["gradient.png"];
  const text = await ask(null);
  const a = await ask(grad), b = await ask(grad);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, text.choices[0].message.content);
  // The text around the image is tokenized piece by piece: a token or two more.
  const extra = a.usage.prompt_tokens - 64 - text.usage.prompt_tokens;
  assert.ok(extra >= 0 && extra <= 2, `prompt_tokens ${a.usage.prompt_tokens}, without the image ${text.usage.prompt_tokens}`);
  assert.equal(a.usage.prompt_tokens_details.image_tokens, 64);
  await assert.rejects(client.chat.completions.create({ model: "story", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: grad } }, { type: "text", text: "x" }] }] }),
    err => err.status === 400 && err.code === "model_not_vision" && /mmproj/.test(err.message));
  await assert.rejects(ask("https://example.com/cat.png"),
    err => err.status === 400 && err.code === "image_url_not_allowed");
});
