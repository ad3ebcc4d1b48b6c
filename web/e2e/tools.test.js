// Tool calling and logprobs through the official clients: the openai SDK
// (a round trip, streamed calls assembled by its ChatCompletionStream) and
// the Vercel ai SDK (generateText with a tool over @ai-sdk/openai-compatible),
// against a real jetaid serving a generated model that carries Qwen 2.5's
// real chat template (bin/jetai-modelgen -chat-template-file). Its weights
// are noise; the grammar makes every required call valid, which is what
// these tests can assert. The official ollama client runs the same round
// trip on /api/chat.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { Ollama } from "ollama";
import { generateText, jsonSchema, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { startDaemon, ROOT, KEY } from "./daemon.js";

let d, client;

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather forecast for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", enum: ["Paris", "Oslo"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city", "days"],
      additionalProperties: false,
    },
  },
};

function checkArgs(text) {
  const a = JSON.parse(text);
  assert.ok(["Paris", "Oslo"].includes(a.city), text);
  assert.ok(Number.isInteger(a.days) && a.days >= 1 && a.days <= 7, text);
  assert.deepEqual(Object.keys(a).sort(), ["city", "days"]);
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "jetai-tools-"));
  const model = join(dir, "qwen-tiny.gguf");
  execFileSync(join(ROOT, "bin/jetai-modelgen"), ["-preset", "tiny", "-out", model,
    "-chat-template-file", join(ROOT, "daemon/chattmpl/testdata/templates/qwen2.5.jinja")]);
  d = await startDaemon({ extra: `
model "qwen" {
  path     = "${model}"
  context  = 2048
  parallel = 2
  threads  = 1
}
` });
  client = new OpenAI({ baseURL: d.url + "/v1", apiKey: KEY });
});

after(async () => { if (d) await d.stop(); });

test("openai: call, tool result, answer", async () => {
  const messages = [{ role: "user", content: "What is the weather in Oslo?" }];
  const first = await client.chat.completions.create({
    model: "qwen", messages, tools: [weather], tool_choice: "required", parallel_tool_calls: false, max_tokens: 200, temperature: 0,
  });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "get_weather");
  checkArgs(call.function.arguments);
  messages.push(choice.message, { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temp: -3 }) });
  const second = await client.chat.completions.create({ model: "qwen", messages, tools: [weather], tool_choice: "none", max_tokens: 8 });
  assert.notEqual(second.choices[0].finish_reason, "tool_calls");
  assert.ok(second.choices[0].message.content.length > 0);
  // A tool message answering no call is the client's mistake, named.
  await assert.rejects(
    client.chat.completions.create({ model: "qwen", messages: [...messages.slice(0, 1), { role: "tool", tool_call_id: "call_nope", content: "1" }] }),
    e => e.status === 400 && e.param === "messages[1].tool_call_id");
});

test("openai: streamed tool calls assembled by the client", async () => {
  const stream = client.chat.completions.stream({
    model: "qwen", messages: [{ role: "user", content: "Weather?" }], tools: [weather],
    tool_choice: { type: "function", function: { name: "get_weather" } }, parallel_tool_calls: false, max_tokens: 200,
  });
  let argDeltas = 0;
  stream.on("tool_calls.function.arguments.delta", () => { argDeltas++; });
  const done = await stream.finalChatCompletion();
  const calls = done.choices[0].message.tool_calls;
  assert.equal(done.choices[0].finish_reason, "tool_calls");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, "get_weather");
  assert.ok(calls[0].id.startsWith("call_"));
  checkArgs(calls[0].function.arguments);
  assert.ok(argDeltas >= 1, "the arguments came in pieces");
});

test("openai: logprobs", async () => {
  const r = await client.chat.completions.create({
    model: "qwen", messages: [{ role: "user", content: "Hello" }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3,
  });
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length > 0);
  for (const t of lp) {
    assert.equal(t.top_logprobs.length, 3);
    assert.ok(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-4, "greedy picks the most likely token");
  }
  assert.equal(lp.map(t => Buffer.from(t.bytes).toString("latin1")).join(""), Buffer.from(r.choices[0].message.content).toString("latin1"));
});

test("ai SDK: generateText with a tool", async () => {
  const provider = createOpenAICompatible({ name: "jetai", baseURL: d.url + "/v1", apiKey: KEY });
  const seen = [];
  const r = await generateText({
    model: provider("qwen"),
    prompt: "What is the weather in Paris?",
    maxOutputTokens: 200,
    temperature: 0,
    toolChoice: "required",
    // One call: with parallel calls allowed the grammar also lets the
    // noise weights open a second call, which may run past the limit.
    providerOptions: { jetai: { parallel_tool_calls: false } },
    tools: {
      get_weather: tool({
        description: weather.function.description,
        inputSchema: jsonSchema(weather.function.parameters),
        execute: async input => { seen.push(input); return { temp: 21 }; },
      }),
    },
  });
  assert.equal(r.finishReason, "tool-calls");
  assert.equal(r.toolCalls.length, 1);
  assert.equal(r.toolCalls[0].toolName, "get_weather");
  assert.equal(seen.length, 1);
  checkArgs(JSON.stringify(seen[0]));
  assert.deepEqual(r.toolResults[0].output, { temp: 21 });
});

test("ollama: call, tool result by tool_name, answer, whole and streamed", async () => {
  // Ollama has no tool_choice: the call comes from /v1 with "required",
  // and goes back to /api/chat in Ollama's shape (no id, arguments an
  // object).
  const first = await client.chat.completions.create({
    model: "qwen", messages: [{ role: "user", content: "Weather in Oslo?" }], tools: [weather],
    tool_choice: "required", parallel_tool_calls: false, temperature: 0, max_tokens: 200,
  });
  const call = first.choices[0].message.tool_calls[0];
  const ollama = new Ollama({ host: d.url, headers: { Authorization: "Bearer " + KEY } });
  const messages = [
    { role: "user", content: "Weather in Oslo?" },
    { role: "assistant", content: "", tool_calls: [{ function: { name: call.function.name, arguments: JSON.parse(call.function.arguments) } }] },
    { role: "tool", tool_name: call.function.name, content: JSON.stringify({ temp: -3 }) },
  ];
  const checkCalls = calls => {
    for (const c of calls ?? []) {
      assert.equal(c.function.name, "get_weather");
      assert.equal(typeof c.function.arguments, "object");
      checkArgs(JSON.stringify(c.function.arguments));
    }
  };
  const options = { temperature: 0, num_predict: 24 };
  const whole = await ollama.chat({ model: "qwen:latest", messages, tools: [weather], options });
  assert.equal(whole.message.role, "assistant");
  assert.equal(whole.done, true);
  assert.equal(whole.done_reason === "stop" || whole.done_reason === "length", true, whole.done_reason);
  checkCalls(whole.message.tool_calls);

  let text = "", calls = [], last;
  for await (const part of await ollama.chat({ model: "qwen", messages, tools: [weather], options, stream: true })) {
    text += part.message.content;
    calls.push(...(part.message.tool_calls ?? []));
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(text, whole.message.content);
  assert.deepEqual(calls, whole.message.tool_calls ?? []);
  checkCalls(calls);

  // A result that answers no call is refused, naming the message.
  await assert.rejects(ollama.chat({ model: "qwen", tools: [weather], messages: [{ role: "user", content: "x" }, { role: "tool", tool_name: "get_weather", content: "1" }] }),
    e => e.status_code === 400 && /messages\[1\]/.test(e.message));
});
