// Starts a real jetaid (bin/jetaid from `make build`) on a temporary config
// with the real tiny model, for the browser tests, and launches Debian's
// chromium through playwright-core. Nothing is downloaded.
import { mkdtempSync, writeFileSync, mkdirSync, existsSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { freePort, runJetaid } from "./jetaid.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const KEY = "sk-browser-test";
export const ARTIFACTS = resolve(ROOT, process.env.ARTIFACTS || ".cache/artifacts/browser");
mkdirSync(ARTIFACTS, { recursive: true });

// startDaemon runs jetaid with two models on the tiny model's file:
// "stories" (preloaded) and "spare" (loaded by the tests' buttons), reading
// its temperatures, power and memory from a copy of the recorded Orin Nano
// tree (testdata/platform/orin-nano) that the tests may change. It returns
// {url, root (that copy), conf (the config file), text (its contents),
// stop(), log()}. extra is more config text (more models) appended to it.
export async function startDaemon({ extra = "" } = {}) {
  const model = process.env.JETAI_TEST_MODEL || resolve(ROOT, "../shared/models/stories260K.gguf");
  if (!existsSync(model)) throw new Error(`the real tiny model ${model} is missing (JETAI_TEST_MODEL)`);
  const bin = process.env.JETAID || join(ROOT, "bin/jetaid");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run make build`);
  const dir = mkdtempSync(join(tmpdir(), "jetai-browser-"));
  const port = await freePort();
  const root = join(dir, "machine");
  cpSync(join(ROOT, "testdata/platform/orin-nano"), root, { recursive: true });
  const conf = join(dir, "jetai.hcl");
  const text = `
server {
  listen   = "127.0.0.1:${port}"
  api_keys = ["${KEY}"]
}
memory {
  budget  = "1GiB"
  reserve = "128MiB"
}
thermal {
  soft_limit    = 60
  hard_limit    = 80
  poll_interval = "250ms"
}
model "stories" {
  path       = "${model}"
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
  priority   = 10
}
model "spare" {
  path       = "${model}"
  context    = 256
  parallel   = 1
  threads    = 1
  keep_alive = "forever"
}
experiment "ab" {
  variant "a" { model = "stories" }
  variant "b" { model = "gpt2" }
}
${extra}`;
  writeFileSync(conf, text);
  const d = await runJetaid({ bin, args: ["--config", conf, "--platform-root", root], port });
  return { ...d, root, conf, text, model };
}

// api calls the daemon with the key.
export async function api(d, method, path, body) {
  const r = await fetch(d.url + path, {
    method, headers: { Authorization: "Bearer " + KEY, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// The flags this machine needs: headless as root without the sandbox, and
// no background connections (the network outside is closed).
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// launch starts chromium with a fresh profile (playwright-core makes a new
// temporary user data dir for every launch).
export async function launch() {
  const exe = process.env.CHROMIUM || "/usr/bin/chromium";
  if (!existsSync(exe)) throw new Error(`${exe} is missing: apt-get install chromium (.ci/run does)`);
  return chromium.launch({ executablePath: exe, headless: true, args: FLAGS });
}

// watch records console errors, page errors and any request that leaves
// the daemon's origin (the pages must work offline).
export function watch(page, origin) {
  const problems = [];
  page.on("console", m => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  page.on("pageerror", e => problems.push(`page error: ${e.message}`));
  page.on("request", r => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith("data:")) problems.push(`request outside the daemon: ${u}`);
  });
  page.on("requestfailed", r => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  return problems;
}
