// Starts a real jetaid (bin/jetaid from `make build`) for the client
// tests: stories260K as "story" (alias "gpt2"; no chat template) and a tiny
// ChatML model made by bin/jetai-modelgen as "chat", with a generated
// vision projector (64 tokens an image), behind an API key. Nothing is
// downloaded.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, existsSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, runJetaid } from "./jetaid.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const KEY = "sk-client-test";

export async function startClientDaemon() {
  const story = process.env.JETAI_TEST_MODEL || resolve(ROOT, "../shared/models/stories260K.gguf");
  if (!existsSync(story)) throw new Error(`the real tiny model ${story} is missing (JETAI_TEST_MODEL)`);
  const bin = process.env.JETAID || join(ROOT, "bin/jetaid");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run make build`);
  const gen = join(ROOT, "bin/jetai-modelgen");
  if (!existsSync(gen)) throw new Error(`${gen} is missing: run make build`);
  const dir = mkdtempSync(join(tmpdir(), "jetai-clients-"));
  const chat = join(dir, "chat.gguf");
  execFileSync(gen, ["-preset", "tiny", "-chat-template", "-out", chat]);
  const mmproj = join(dir, "mmproj.gguf");
  execFileSync(gen, ["-projector", "-for", chat, "-out", mmproj]);
  const port = await freePort();
  const conf = join(dir, "jetai.hcl");
  writeFileSync(conf, `
server {
  listen       = "127.0.0.1:${port}"
  admin_socket = "${join(dir, "admin.sock")}"
  api_keys     = ["${KEY}"]
}
memory {
  budget  = "1GiB"
  reserve = "64MiB"
}
model "story" {
  path       = "${story}"
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
  sampling {
    max_tokens = 24
  }
}
model "chat" {
  path       = "${chat}"
  mmproj     = "${mmproj}"
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
  sampling {
    max_tokens = 12
  }
}
`);
  return runJetaid({ bin, args: ["--config", conf], port, timeoutMs: 60000,
    cleanup: () => rmSync(dir, { recursive: true, force: true }) });
}

// IMAGES are the test images (testdata/images), base64.
export const IMAGES = Object.fromEntries(["gradient.png", "checker.jpg"].map(
  n => [n, readFileSync(join(ROOT, "testdata/images", n)).toString("base64")]));
