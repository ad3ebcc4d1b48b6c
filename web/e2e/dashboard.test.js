// The dashboard in a real browser against a real jetaid with the real tiny
// model: it renders without console errors or outside requests, a
// generation shows up in the charts, the load and unload buttons change a
// model's state (checked through the API too), the API key dialog works,
// and it reads on a phone and in dark and light. Screenshots go to
// ARTIFACTS (default .cache/artifacts/browser).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { startDaemon, launch, watch, api, KEY, ARTIFACTS } from "./daemon.js";

let d, browser;
before(async () => {
  d = await startDaemon();
  browser = await launch();
});
after(async () => {
  if (browser) await browser.close();
  if (d) await d.stop();
});

// page opens the dashboard with the API key already stored, as after a
// first visit.
async function open(ctxOpts = {}) {
  const ctx = await browser.newContext(ctxOpts);
  await ctx.addInitScript(k => localStorage.setItem("jetai.apiKey", k), KEY);
  const page = await ctx.newPage();
  const problems = watch(page, d.url);
  await page.goto(d.url + "/");
  await page.locator('#models tr[data-model="stories"] .state').waitFor();
  return { ctx, page, problems };
}

// shot saves a full-page screenshot, scrolled to the top first so that the
// sticky header sits where it belongs.
async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}

test("renders models, memory and status without console errors", async () => {
  const { ctx, page, problems } = await open({ viewport: { width: 1280, height: 900 } });
  await page.locator('#models tr[data-model="stories"] .state', { hasText: "ready" }).waitFor();
  assert.equal(await page.locator("#health").textContent(), "ok");
  assert.equal(await page.locator('#models tr[data-model="spare"] .state').textContent(), "unloaded");
  // Memory: the budget of the config, and a segment for the loaded model.
  assert.equal(await page.locator("#mem-budget").textContent(), "1.0 GiB");
  assert.ok(await page.locator("#mem-bar .seg").count() >= 1, "no memory segment for the loaded model");
  // The thermal card says what it has, whatever the machine.
  assert.notEqual((await page.locator("#thermal-note").textContent()).trim(), "");
  // The preload shows as a load event.
  await page.locator('#events li[data-kind="load"]', { hasText: "stories" }).first().waitFor();
  await shot(page, "dashboard-desktop.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("a generation shows up in the throughput and TTFT charts", async () => {
  const { ctx, page, problems } = await open({ viewport: { width: 1280, height: 900 } });
  const tokensBefore = Number((await page.locator('#models tr[data-model="stories"] td[data-label="Tokens"]').textContent()).replace(/,/g, ""));
  const r = await api(d, "POST", "/inference", { prompt: "Once upon a time", model: "stories", max_tokens: 64, ignore_eos: true });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.usage.completion_tokens, 64);
  // The next poll (every 2 s) draws it.
  await page.waitForFunction(() => Number(document.getElementById("tps-chart").dataset.max) > 0, null, { timeout: 10000 });
  await page.waitForFunction(() => Number(document.getElementById("ttft-chart").dataset.max) > 0, null, { timeout: 10000 });
  const max = Number(await page.locator("#tps-chart").getAttribute("data-max"));
  // 64 tokens in a 10 s bucket is 6.4 tokens/s, unless other requests
  // landed in the same bucket.
  assert.ok(max >= 6.4, `throughput peak ${max}, want ≥ 6.4`);
  assert.ok(await page.locator("#tps-chart circle").count() >= 1, "no point drawn");
  await page.waitForFunction(before => {
    const td = document.querySelector('#models tr[data-model="stories"] td[data-label="Tokens"]');
    return Number(td.textContent.replace(/,/g, "")) >= before + 64;
  }, tokensBefore, { timeout: 10000 });
  assert.match(await page.locator("#tps-summary").textContent(), /[1-9]\d* requests? in 5 min/);
  // The model's own median speed and time to first token.
  assert.match(await page.locator('#models tr[data-model="stories"] td[data-label^="Speed"]').textContent(), /^[\d,.]+ tok\/s · \d+ ms$/);
  await shot(page, "dashboard-after-generation.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("load and unload buttons change a model's state", async () => {
  const { ctx, page, problems } = await open({ viewport: { width: 1280, height: 900 } });
  const row = page.locator('#models tr[data-model="spare"]');
  await row.locator(".state", { hasText: "unloaded" }).waitFor();
  await row.locator('button[data-action="load"]').click();
  await row.locator(".state", { hasText: "ready" }).waitFor({ timeout: 30000 });
  let m = (await api(d, "GET", "/models")).body.models.find(x => x.name === "spare");
  assert.equal(m.state, "ready");
  assert.ok(m.measured_bytes > 0 || m.estimated_bytes > 0);
  await page.locator('#events li[data-kind="load"]', { hasText: "spare" }).first().waitFor();
  await shot(page, "dashboard-loaded.png");

  await row.locator('button[data-action="unload"]').click();
  await row.locator(".state", { hasText: "unloaded" }).waitFor({ timeout: 30000 });
  m = (await api(d, "GET", "/models")).body.models.find(x => x.name === "spare");
  assert.equal(m.state, "unloaded");
  await page.locator('#events li[data-kind="unload"]', { hasText: "spare" }).first().waitFor();
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("temperatures against the limits, throttle state and power", async () => {
  const { ctx, page, problems } = await open({ viewport: { width: 1280, height: 900 } });
  const tj = join(d.root, "sys/class/thermal/thermal_zone8/temp"); // tj-thermal
  // The recorded Orin Nano: tj-thermal 49.062 °C is the hottest watched zone.
  await page.locator("#temp-hot", { hasText: "49.1 °C" }).waitFor();
  assert.equal(await page.locator("#throttle").textContent(), "normal");
  assert.match(await page.locator("#thermal-note").textContent(), /soft limit 60 °C, hard limit 80 °C/);
  // Zones that read (the CV zones are off at -256 °C and read invalid).
  const zones = await page.$$eval("#zones .zone", ns => ns.map(n => n.textContent));
  assert.ok(zones.some(z => z.includes("tj-thermal") && z.includes("49.1 °C")), zones.join(" | "));
  assert.ok(!zones.some(z => z.includes("cv0")), "an invalid zone is shown");
  assert.equal(await page.locator("#zones .zone").first().locator(".mark.soft").count(), 1);
  assert.equal(await page.locator("#zones .zone").first().locator(".mark.hard").count(), 1);
  // The INA3221 input rail: 5.064 V × 1.240 A.
  assert.match(await page.locator("#power").textContent(), /VDD_IN\s*6\.28 W/);
  assert.match(await page.locator("#power .gpu").textContent(), /GPU 17000000\.ga10b\s*\d+ of \d+ MHz/);

  // Heat it past the soft limit: the policy throttles and the dashboard
  // says so, with the transition among the events.
  writeFileSync(tj, "66000\n");
  await page.locator("#throttle", { hasText: "throttle" }).waitFor({ timeout: 10000 });
  await page.locator("#temp-hot", { hasText: "66 °C" }).waitFor();
  assert.ok(await page.locator("#zones .fill.warn").count() >= 1, "the hot zone's bar is not marked");
  await page.locator('#events li[data-kind="throttle"]').first().waitFor();
  await shot(page, "dashboard-throttle.png");
  // And past the hard limit.
  writeFileSync(tj, "83000\n");
  await page.locator("#throttle", { hasText: "shed" }).waitFor({ timeout: 10000 });
  assert.ok(await page.locator("#zones .fill.bad").count() >= 1);
  // Shedding unloads the idle low-priority model: an eviction.
  await page.locator('#events li[data-kind="eviction"]', { hasText: "thermal shed" }).first().waitFor({ timeout: 10000 });
  // Cool down (below the limits by more than the hysteresis).
  writeFileSync(tj, "49062\n");
  await page.locator("#throttle", { hasText: "normal" }).waitFor({ timeout: 10000 });
  // Shedding may have unloaded the idle models; the next tests want
  // "stories" loaded.
  const r = await api(d, "POST", "/load_model", { model_name: "stories" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await page.locator('#models tr[data-model="stories"] .state', { hasText: "ready" }).waitFor();
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("config reloads show up: applied, rejected, recovered", async () => {
  const { ctx, page, problems } = await open({ viewport: { width: 1280, height: 900 } });
  await page.locator("#config-line", { hasText: "generation 1" }).waitFor();
  // A new model block: the file watcher reloads, the model appears.
  const withExtra = d.text + `
model "extra" {
  path    = "${d.model}"
  context = 256
}
`;
  writeFileSync(d.conf, withExtra);
  await page.locator('#models tr[data-model="extra"] .state', { hasText: "unloaded" }).waitFor({ timeout: 15000 });
  await page.locator('#events li[data-kind="reload"]', { hasText: "generation 2" }).waitFor();
  await page.locator("#config-line", { hasText: "generation 2" }).waitFor();
  // A broken file is rejected; the dashboard shows why, and the running
  // config (with "extra") stays.
  writeFileSync(d.conf, withExtra + `\nmodel "broken" {\n  context = "lots"\n}\n`);
  await page.locator('#events li[data-kind="reload_rejected"]').first().waitFor({ timeout: 15000 });
  await page.locator("#reload-error:not(.hidden)").waitFor();
  assert.match(await page.locator("#reload-error").textContent(), /jetai\.hcl:\d+:\d+/);
  assert.equal(await page.locator('#models tr[data-model="extra"]').count(), 1);
  await shot(page, "dashboard-reload-rejected.png");
  // Fixing the file clears the error.
  writeFileSync(d.conf, withExtra);
  await page.locator("#reload-error.hidden").waitFor({ state: "attached", timeout: 15000 });
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("asks for the API key and keeps it", async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const problems = watch(page, d.url);
  await page.goto(d.url + "/dashboard");
  const dlg = page.locator("#key-dialog");
  await dlg.waitFor();
  assert.match(await page.locator("#error").textContent(), /API key/);
  await page.fill("#key-input", KEY);
  await page.click("#key-save");
  await page.locator('#models tr[data-model="stories"] .state', { hasText: "ready" }).waitFor();
  assert.ok(await page.locator("#error").evaluate(e => e.classList.contains("hidden")));
  assert.equal(await page.evaluate(() => localStorage.getItem("jetai.apiKey")), KEY);
  // The only errors are the browser's notes on the 401 answers before the key.
  const other = problems.filter(p => !/status of 401/.test(p));
  assert.deepEqual(other, []);
  await ctx.close();
});

// luminance of a CSS rgb() colour, 0 (black) to 1 (white).
const lum = c => {
  const [r, g, b] = c.match(/\d+/g).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
};

test("phone-sized, dark and light", async () => {
  for (const scheme of ["light", "dark"]) {
    const { ctx, page, problems } = await open({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: scheme });
    await page.locator('#models tr[data-model="stories"] .state', { hasText: "ready" }).waitFor();
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const fg = await page.evaluate(() => getComputedStyle(document.body).color);
    if (scheme === "dark") assert.ok(lum(bg) < 0.2 && lum(fg) > 0.7, `dark: background ${bg}, text ${fg}`);
    else assert.ok(lum(bg) > 0.8 && lum(fg) < 0.3, `light: background ${bg}, text ${fg}`);
    // Nothing wider than the screen: no sideways scrolling.
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(over <= 1, `page is ${over}px wider than the phone's screen`);
    // The model table turns into cards with labels.
    assert.equal(await page.locator("#models thead").evaluate(e => getComputedStyle(e).display), "none");
    await shot(page, `dashboard-phone-${scheme}.png`);
    assert.deepEqual(problems, []);
    await ctx.close();
  }
  // The theme button overrides the system's choice.
  const { ctx, page } = await open({ colorScheme: "light" });
  await page.click("#theme-button");
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.ok(lum(bg) < 0.2, `after the theme button: ${bg}`);
  await shot(page, "dashboard-desktop-dark.png");
  await ctx.close();
});

test("an experiment's variants and verdicts show in the experiments card", async () => {
  const { ctx, page, problems } = await open({ viewport: { width: 1280, height: 900 } });
  assert.equal(await page.locator("#experiments-card").isVisible(), true);
  for (let i = 0; i < 6; i++) {
    const r = await api(d, "POST", "/inference", { prompt: "Once upon a time", model: "ab", user: "u" + i, max_tokens: 4 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.selection.experiment, "ab");
  }
  await page.waitForFunction(() => {
    let n = 0;
    for (const td of document.querySelectorAll("#experiments tbody tr td:nth-child(5)")) n += Number(td.textContent);
    return n >= 6;
  }, null, { timeout: 10000 });
  assert.match(await page.locator("#verdicts").textContent(), /not enough data yet/);
  await shot(page, "dashboard-experiments.png");
  assert.deepEqual(problems, []);
  await ctx.close();
});
