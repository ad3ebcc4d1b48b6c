// A hostile web page in a real browser against a real jetaid without API
// keys (a default install): the requests it can make without a CORS
// preflight (a no-cors fetch, a text/plain form) reach jetaid with its
// Origin and are refused before they act, so the model stays loaded; the
// daemon's own dashboard still loads and unloads.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";
import { startDaemon, launch, api, KEY } from "./daemon.js";

let d, browser, evil;
before(async () => {
  d = await startDaemon();
  // A default install: no api_keys. The file is watched; wait until the
  // reload is in force (a keyless request is served).
  writeFileSync(d.conf, d.text.replace(`api_keys = ["${KEY}"]`, ""));
  for (const deadline = Date.now() + 15000; ; await new Promise(ok => setTimeout(ok, 100))) {
    if ((await fetch(d.url + "/models")).status === 200) break;
    if (Date.now() > deadline) throw new Error("the config without api_keys was not applied:\n" + d.log());
  }
  browser = await launch();
  // The hostile page, on another origin (another port of the same host).
  evil = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><title>evil</title>
<iframe name="sink"></iframe>
<form id="f" method="post" enctype="text/plain" target="sink" action="${d.url}/unload_model">
<input name='{"model_name":"stories","x":"' value='"}'></form>
<script>
  window.done = (async () => {
    const body = JSON.stringify({ model_name: "stories" });
    const out = [];
    for (const path of ["/unload_model", "/inference"]) {
      try {
        await fetch("${d.url}" + path, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body });
        out.push(path + ": sent");
      } catch (e) { out.push(path + ": " + e); }
    }
    // A CORS read of /status: refused, so the fetch fails.
    try { await (await fetch("${d.url}/status")).json(); out.push("status: read"); }
    catch (e) { out.push("status: not readable"); }
    document.getElementById("f").submit();
    return out;
  })();
</script>`);
  });
  await new Promise(ok => evil.listen(0, "127.0.0.1", ok));
});
after(async () => {
  if (browser) await browser.close();
  if (evil) evil.close();
  if (d) await d.stop();
});

async function state(name) {
  const r = await api(d, "GET", "/models");
  return r.body.models.find(m => m.name === name).state;
}

test("a page of another origin cannot unload a model or read the status", async () => {
  for (const deadline = Date.now() + 30000; (await state("stories")) !== "ready"; await new Promise(ok => setTimeout(ok, 100))) {
    if (Date.now() > deadline) throw new Error("stories never became ready");
  }
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  const out = await page.evaluate(() => window.done);
  assert.ok(out.includes("status: not readable"), out.join("; "));
  // The form's navigation lands in the iframe; give it time to arrive.
  await page.waitForTimeout(1500);
  assert.equal(await state("stories"), "ready", "the hostile page unloaded the model");
  await ctx.close();
});

test("the daemon's own dashboard still drives the API without a key", async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(d.url + "/");
  const row = page.locator('#models tr[data-model="spare"]');
  await row.locator(".state", { hasText: "unloaded" }).waitFor();
  await row.locator('button[data-action="load"]').click();
  await row.locator(".state", { hasText: "ready" }).waitFor({ timeout: 30000 });
  assert.equal(await state("spare"), "ready");
  await ctx.close();
});
