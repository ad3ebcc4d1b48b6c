// The API documentation page in a real browser against a real jetaid: it
// renders every operation of /openapi.json without console errors or
// outside requests, try-it-out reaches the daemon with the key, and it
// reads on a phone in dark mode. Screenshots go to ARTIFACTS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon, launch, watch, KEY, ARTIFACTS } from "./daemon.js";

let d, browser, doc;
before(async () => {
  d = await startDaemon();
  browser = await launch();
  doc = await (await fetch(d.url + "/openapi.json")).json();
});
after(async () => {
  if (browser) await browser.close();
  if (d) await d.stop();
});

const METHODS = ["get", "post", "put", "delete", "patch"];
// shot saves a full-page screenshot, scrolled to the top first so that the
// sticky header sits where it belongs.
async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}

test("renders every documented operation and the schemas", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const problems = watch(page, d.url);
  await page.goto(d.url + "/docs");
  await page.locator("#ops details.op").first().waitFor();
  const want = [];
  for (const [path, item] of Object.entries(doc.paths)) for (const m of Object.keys(item)) if (METHODS.includes(m)) want.push(`${m} ${path}`);
  const got = await page.$$eval("#ops details.op", ns => ns.map(n => `${n.dataset.method} ${n.dataset.path}`));
  assert.deepEqual(got.sort(), want.sort());
  assert.ok(want.length >= 15, `only ${want.length} operations`);
  // Every component schema has its own section.
  const schemas = await page.$$eval("#schemas details", ns => ns.map(n => n.id.replace("schema-", "")));
  assert.deepEqual(schemas.sort(), Object.keys(doc.components.schemas).sort());
  assert.match(await page.locator("#version").textContent(), new RegExp(doc.info.version + "$"));
  // Opening an operation shows its request fields and its error answers.
  const inf = page.locator('details.op[data-path="/inference"][data-method="post"]');
  await inf.locator("summary").click();
  await inf.locator(".schema .name", { hasText: /^prompt$/ }).first().waitFor();
  assert.ok(await inf.locator(".resp-code", { hasText: "429" }).count() === 1, "429 not listed for /inference");
  await shot(page, "docs-desktop.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("try it out sends a real request with the API key", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript(k => localStorage.setItem("jetai.apiKey", k), KEY);
  const page = await ctx.newPage();
  const problems = watch(page, d.url);
  await page.goto(d.url + "/docs#op-inference");
  const op = page.locator("#op-inference");
  await op.locator("textarea").waitFor();
  const body = JSON.parse(await op.locator("textarea").inputValue());
  assert.equal(body.prompt, "Once upon a time", "the example body is not prefilled");
  await op.locator("textarea").fill(JSON.stringify({ prompt: "Once upon a time", model: "gpt2", max_tokens: 12 }));
  await op.locator("button.try-send").click();
  await op.locator(".result .pill", { hasText: "200" }).waitFor({ timeout: 20000 });
  const answer = JSON.parse(await op.locator(".try-body").textContent());
  assert.equal(answer.model, "stories");
  assert.ok(answer.response.length > 0);
  // A path parameter.
  await page.goto(d.url + "/docs#op-openaiGetModel");
  const one = page.locator("#op-openaiGetModel");
  await one.locator("input").fill("gpt2");
  await one.locator("button.try-send").click();
  await one.locator(".result .pill", { hasText: "200" }).waitFor();
  assert.equal(JSON.parse(await one.locator(".try-body").textContent()).id, "stories");
  await shot(page, "docs-try-it.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("phone-sized and dark", async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: "dark" });
  const page = await ctx.newPage();
  const problems = watch(page, d.url);
  await page.goto(d.url + "/docs");
  await page.locator("#ops details.op").first().waitFor();
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 1, `page is ${over}px wider than the phone's screen`);
  await page.locator('details.op[data-path="/v1/chat/completions"] summary').click();
  await shot(page, "docs-phone-dark.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});
