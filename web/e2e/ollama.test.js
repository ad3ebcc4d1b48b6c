// The Ollama wire format checked with the official `ollama` client against
// a real jetaid: list, show, ps, version, generate and chat (streamed and
// not), embed, and errors as the client reports them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Ollama } from "ollama";
import { startClientDaemon, KEY, IMAGES } from "./clients.js";

let d, ollama;
before(async () => {
  d = await startClientDaemon();
  ollama = new Ollama({ host: d.url, headers: { Authorization: "Bearer " + KEY } });
});
after(async () => { await d?.stop(); });

test("ollama.list and ollama.show describe the configured models", async () => {
  const { models } = await ollama.list();
  const names = models.map(m => m.name).sort();
  assert.deepEqual(names, ["chat", "story"]);
  const story = models.find(m => m.name === "story");
  assert.equal(story.details.format, "gguf");
  assert.equal(story.details.family, "llama");
  assert.ok(story.size > 1_000_000, `size ${story.size}`);
  assert.ok(story.modified_at instanceof Date || typeof story.modified_at === "string");

  const show = await ollama.show({ model: "chat:latest" });
  assert.match(show.template, /im_start/);
  assert.match(show.parameters, /temperature/);
  assert.equal(show.model_info["general.architecture"], "llama");
  assert.ok(show.capabilities.includes("completion"));
});

test("ollama.ps and ollama.version", async () => {
  const { models } = await ollama.ps();
  assert.ok(models.some(m => m.name === "story"), JSON.stringify(models));
  for (const m of models) assert.ok(m.size > 0 && m.expires_at, JSON.stringify(m));
  const { version } = await ollama.version();
  assert.ok(version.length > 0);
});

test("ollama.generate, whole and streamed, gives the real model's greedy text", async () => {
  const options = { temperature: 0, num_predict: 16 };
  const whole = await ollama.generate({ model: "gpt2", prompt: "Once upon a time", options });
  assert.equal(whole.done, true);
  assert.match(whole.response, /Lily/);
  assert.equal(whole.eval_count, 16);
  assert.equal(whole.done_reason, "length");
  assert.ok(whole.total_duration > 0 && whole.eval_duration > 0);

  let text = "", chunks = 0, last;
  for await (const part of await ollama.generate({ model: "story:latest", prompt: "Once upon a time", options, stream: true })) {
    text += part.response;
    chunks++;
    last = part;
  }
  // The runner gathers tokens into frames (every few ms): at least one
  // text chunk, then the final object.
  assert.ok(chunks >= 2, `${chunks} chunks`);
  assert.equal(text, whole.response);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 16);
});

test("ollama.chat, whole and streamed", async () => {
  const messages = [{ role: "system", content: "be brief" }, { role: "user", content: "Hello" }];
  const options = { temperature: 0, num_predict: 10 };
  const whole = await ollama.chat({ model: "chat", messages, options });
  assert.equal(whole.message.role, "assistant");
  assert.equal(whole.done, true);
  assert.equal(whole.eval_count, 10);

  let text = "", last;
  for await (const part of await ollama.chat({ model: "chat", messages, options, stream: true })) {
    assert.equal(part.message.role, "assistant");
    text += part.message.content;
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(text, whole.message.content);

  const json = await ollama.chat({ model: "chat", messages: [{ role: "user", content: "JSON please" }], format: "json", options: { num_predict: 48 } });
  assert.match(json.message.content.trim(), /^\{/);
});

test("ollama.embed and ollama.embeddings", async () => {
  const one = await ollama.embed({ model: "story", input: "Once upon a time" });
  const two = await ollama.embed({ model: "story", input: ["Once upon a time", "Lily"] });
  assert.equal(two.embeddings.length, 2);
  assert.deepEqual(two.embeddings[0], one.embeddings[0]);
  const norm = one.embeddings[0].reduce((s, x) => s + x * x, 0);
  assert.ok(Math.abs(norm - 1) < 1e-3, `norm² ${norm}`);
  const old = await ollama.embeddings({ model: "story", prompt: "Once upon a time" });
  assert.deepEqual(old.embedding, one.embeddings[0]);
});

test("errors reach the client with Ollama's message and status", async () => {
  await assert.rejects(ollama.chat({ model: "nope", messages: [{ role: "user", content: "x" }] }),
    e => e.status_code === 404 && /unknown model "nope"/.test(e.message));
  await assert.rejects(ollama.chat({ model: "chat", messages: [{ role: "user", content: "x", images: ["aGk="] }] }),
    e => e.status_code === 400 && /image 1: not a PNG/.test(e.message));
  await assert.rejects(ollama.pull({ model: "llama3.2" }),
    e => e.status_code === 403 && /server.allow_pull = true/.test(e.message));
  const noKey = new Ollama({ host: d.url });
  await assert.rejects(noKey.list(), e => e.status_code === 401 && /API key/.test(e.message));
});

test("ollama: images on chat and generate reach the vision model", async () => {
  const img = IMAGES["checker.jpg"];
  const show = await ollama.show({ model: "chat" });
  assert.ok(show.capabilities.includes("vision"), JSON.stringify(show.capabilities));
  const plain = await ollama.chat({ model: "chat", messages: [{ role: "user", content: "Look" }], options: { temperature: 0, num_predict: 8 } });
  const c = await ollama.chat({ model: "chat", messages: [{ role: "user", content: "Look", images: [img] }], options: { temperature: 0, num_predict: 8 } });
  const extra = c.prompt_eval_count - 64 - plain.prompt_eval_count; // text tokenized around the image
  assert.ok(extra >= 0 && extra <= 2, `prompt_eval_count ${c.prompt_eval_count}, without the image ${plain.prompt_eval_count}`);
  const bytes = Uint8Array.from(Buffer.from(img, "base64"));
  const g = await ollama.generate({ model: "chat", prompt: "Look", images: [bytes], options: { temperature: 0, num_predict: 8 } });
  assert.ok(g.prompt_eval_count >= 64, `prompt_eval_count ${g.prompt_eval_count}`);
  await assert.rejects(ollama.generate({ model: "story", prompt: "x", images: [img] }),
    e => e.status_code === 400 && /mmproj/.test(e.message));
});
