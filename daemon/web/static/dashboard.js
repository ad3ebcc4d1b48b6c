// The dashboard: polls /status, /models and /performance every two seconds
// and draws what they say; the load and unload buttons call /load_model and
// /unload_model. Everything shown comes from those endpoints.
"use strict";

(() => {
  const { el, call, errorText, bytes, num, duration, ago, clock } = jetai;
  const POLL_MS = 2000;
  const $ = id => document.getElementById(id);
  let paused = false, timer = null, last = null, asked = false;
  const pending = new Map(); // model -> "load" | "unload" while a button's call runs
  const notes = new Map();   // model -> last action's error, shown in its row

  // A model's colour in the memory bar: a stable hue from its position.
  const hue = i => (210 + i * 67) % 360;

  function showError(msg) {
    const e = $("error");
    e.textContent = msg || "";
    e.classList.toggle("hidden", !msg);
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const [st, ms, pf] = await Promise.all([call("GET", "/status"), call("GET", "/models"), call("GET", "/performance")]);
      const bad = [st, ms, pf].find(r => !r.ok);
      if (bad) {
        if (bad.status === 401) {
          showError("This daemon needs an API key (server.api_keys). Enter it with the API key button.");
          if (!asked) { asked = true; jetai.keyDialog(poll); }
        } else {
          showError("The daemon answered " + errorText(bad));
        }
      } else {
        showError("");
        last = { status: st.body, models: ms.body.models, perf: pf.body, at: new Date() };
        render(last);
      }
    } catch (err) {
      showError("Cannot reach the daemon: " + err.message);
      $("health").textContent = "unreachable";
      $("health").className = "pill bad";
    }
    if (!paused) timer = setTimeout(poll, POLL_MS);
  }

  function render(d) {
    const st = d.status;
    $("health").textContent = st.status;
    $("health").className = "pill " + st.status;
    $("meta").textContent = `${/^\d+\.\d/.test(st.version) ? "v" : ""}${st.version} · up ${duration(st.uptime_seconds)} · ${st.models.configured} models, ${st.models.loaded.length} loaded`;
    $("updated").textContent = "updated " + clock(d.at);
    renderMemory(st.pool, d.models);
    renderThermal(st.platform);
    renderQueues(st.pool, d.models);
    renderCharts(d.perf);
    renderModels(d.models, st.pool, d.perf);
    renderExperiments(d.perf);
    renderEvents(st);
  }

  // Experiments and the response cache, from /performance; the card stays
  // hidden while neither is configured.
  function renderExperiments(perf) {
    const exps = perf.experiments || [], rc = perf.response_cache;
    $("experiments-card").classList.toggle("hidden", !exps.length && !rc);
    $("respcache-line").textContent = rc
      ? `Response cache: ${rc.hits} hits (${rc.collapsed} joined a generation in flight), ${rc.misses} misses, ${rc.bypasses} bypassed · ${rc.entries} answers, ${bytes(rc.bytes)} of ${bytes(rc.max_bytes)} · ${rc.evictions} evicted`
      : "";
    const ci = m => m && m.mean !== undefined ? num(m.mean, 1) + (m.ci95 !== undefined ? " ± " + num(m.ci95, 1) : "") : "–";
    const pp = m => m && m.p50 !== undefined ? `${num(m.p50, 0)} / ${num(m.p95, 0)} ms` : "–";
    const rows = [];
    for (const e of exps) {
      for (const v of e.variants) {
        const shadow = e.mode === "shadow" && v.shadow_runs;
        rows.push(el("tr", {},
          el("td", { text: e.name + (e.mode === "shadow" ? " (shadow)" : "") }), el("td", { text: v.name }), el("td", { text: v.model }),
          el("td", { class: "num", text: Math.round(100 * v.share) + "%" }),
          el("td", { class: "num", text: shadow ? `${v.shadow_runs} copies` : String(v.requests) }),
          el("td", { class: "num", text: String(shadow ? v.shadow_errors : v.errors) }),
          el("td", { class: "num", text: ci(v.tokens_per_second) }), el("td", { class: "num", text: pp(v.latency_ms) }),
          el("td", { class: "num", text: `${v.thumbs_up} / ${v.thumbs_down}` })));
      }
    }
    $("experiments").querySelector("tbody").replaceChildren(...rows);
    const verdicts = [];
    for (const e of exps) {
      for (const c of e.comparisons) {
        verdicts.push(el("li", { class: c.significant ? "" : "muted", text: `${e.name}, ${c.metric}: ${c.verdict}` }));
      }
    }
    $("verdicts").replaceChildren(...verdicts);
  }

  function renderMemory(pool, models) {
    $("mem-used").textContent = bytes(pool.used);
    $("mem-budget").textContent = bytes(pool.budget);
    const bar = $("mem-bar");
    bar.replaceChildren();
    let left = 0;
    const legend = [];
    models.forEach((m, i) => {
      if (!m.charged_bytes) return;
      const w = pool.budget ? (100 * m.charged_bytes) / pool.budget : 0;
      const seg = el("div", { class: "seg fill", title: `${m.name}: ${bytes(m.charged_bytes)} charged` });
      seg.style.left = left + "%";
      seg.style.width = Math.min(w, 100 - left) + "%";
      seg.style.background = `hsl(${hue(i)} 65% 52%)`;
      bar.append(seg);
      left += w;
      const sw = el("span", { class: "swatch" });
      sw.style.background = `hsl(${hue(i)} 65% 52%)`;
      legend.push(el("span", {}, sw, `${m.name} ${bytes(m.charged_bytes)}`));
    });
    if (pool.budget && pool.reserve) {
      const mark = el("div", { class: "mark", title: "budget minus reserve" });
      mark.style.left = Math.max(0, 100 - (100 * pool.reserve) / pool.budget) + "%";
      bar.append(mark);
    }
    $("mem-legend").replaceChildren(...(legend.length ? legend : [el("span", { text: "no model loaded" })]));
    const kv = [["reserve", bytes(pool.reserve)], ["free in budget", bytes(Math.max(0, pool.budget - pool.used))]];
    if (pool.mem_available) kv.push(["system MemAvailable", bytes(pool.mem_available)]);
    $("mem-kv").replaceChildren(...kv.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  }

  function renderThermal(p) {
    const note = $("thermal-note");
    if (!p) {
      $("temp-hot").textContent = "–";
      $("throttle").textContent = "no readings";
      $("throttle").className = "pill";
      $("zones").replaceChildren();
      $("power").replaceChildren();
      note.textContent = "This daemon reports no platform readings in /status (no thermal monitor).";
      return;
    }
    const lim = p.limits || {};
    const state = p.state || "normal";
    $("throttle").textContent = state;
    $("throttle").className = "pill " + (state === "normal" ? "ok" : state === "throttle" ? "warn" : "bad");
    const zones = ((p.reading && p.reading.zones) || []).filter(z => z.valid);
    const hot = p.hottest || zones.reduce((a, z) => (!a || z.celsius > a.celsius ? z : a), null);
    $("temp-hot").textContent = hot ? `${num(hot.celsius)} °C` : "–";
    const scale = Math.max(lim.hard_limit || 0, ...zones.map(z => z.celsius)) + 10;
    const watched = new Set(p.watched_zones || []);
    $("zones").replaceChildren(...zones.map(z => {
      const bar = el("div", { class: "bar", title: `${z.type}: ${num(z.celsius)} °C (soft ${lim.soft_limit} °C, hard ${lim.hard_limit} °C)` });
      const fill = el("div", { class: "fill" + (z.celsius >= lim.hard_limit ? " bad" : z.celsius >= lim.soft_limit ? " warn" : "") });
      fill.style.width = Math.min(100, (100 * z.celsius) / scale) + "%";
      bar.append(fill);
      for (const [cls, v] of [["soft", lim.soft_limit], ["hard", lim.hard_limit]]) {
        if (!v) continue;
        const m = el("div", { class: "mark " + cls });
        m.style.left = (100 * v) / scale + "%";
        bar.append(m);
      }
      return el("div", { class: "zone" },
        el("div", { class: "row small" }, el("span", { class: watched.has(z.name) || watched.has(z.type) ? "" : "muted", text: z.type || z.name }), el("span", { class: "spacer" }), el("span", { text: num(z.celsius) + " °C" })),
        bar);
    }));
    const rails = ((p.reading && p.reading.rails) || []).filter(r => !r.error);
    const gpus = ((p.reading && p.reading.gpus) || []).filter(g => !g.error);
    $("power").replaceChildren(
      ...rails.map(r => el("div", { class: "row rail" }, el("span", { class: "muted", text: r.name }), el("span", { text: num(r.watts, 2) + " W" }))),
      ...gpus.map(g => el("div", { class: "row gpu" }, el("span", { class: "muted", text: "GPU " + g.name }),
        el("span", { text: `${num(g.freq_hz / 1e6, 0)} of ${num(g.max_freq_hz / 1e6, 0)} MHz${g.load_known ? `, load ${num(g.load * 100, 0)}%` : ""}` }))));
    const parts = [];
    if (lim.soft_limit) parts.push(`soft limit ${lim.soft_limit} °C, hard limit ${lim.hard_limit} °C`);
    if (p.reason) parts.push(p.reason);
    if (!zones.length) parts.push("no thermal zones on this machine");
    note.textContent = parts.join(" · ");
  }

  function renderQueues(pool, models) {
    $("queued").textContent = pool.queued;
    $("queue-total").textContent = `(bound ${pool.queue_total})`;
    const bar = $("queue-bar");
    const fill = el("div", { class: "fill" + (pool.queued >= pool.queue_total ? " bad" : "") });
    fill.style.width = pool.queue_total ? Math.min(100, (100 * pool.queued) / pool.queue_total) + "%" : "0";
    bar.replaceChildren(fill);
    $("queue-kv").replaceChildren(...models.flatMap(m => [
      el("dt", { text: m.name }),
      el("dd", { text: `${m.active} running, ${m.queued} queued${m.draining ? ", draining" : ""}` }),
    ]));
  }

  function renderCharts(perf) {
    const tl = perf.timeline || [];
    const times = tl.map(b => new Date(Date.parse(b.start)));
    charts.line($("tps-chart"), times, [tl.map(b => b.tokens_per_second)], { area: true, format: v => num(v, 1) });
    charts.line($("ttft-chart"), times, [tl.map(b => b.ttft_mean_ms), tl.map(b => b.ttft_max_ms)], { format: v => num(v, 0) });
    const o = perf.overall;
    $("tps-now").textContent = tl.length > 1 ? num(tl[tl.length - 2].tokens_per_second) : "–";
    $("tps-summary").textContent = `${o.window_requests} requests in ${Math.round(perf.window_seconds / 60)} min · ${num(o.window_tokens_per_second)} tok/s average · ${num(o.tokens_per_second.p50)} tok/s per request (p50)`;
    $("ttft-now").textContent = o.time_to_first_token_ms.count ? num(o.time_to_first_token_ms.p50, 0) : "–";
    $("ttft-summary").textContent = o.time_to_first_token_ms.count ? `p95 ${num(o.time_to_first_token_ms.p95, 0)} ms · max ${num(o.time_to_first_token_ms.max, 0)} ms` : "no requests in the window";
  }

  function memCell(m, pool) {
    const scale = Math.max(m.budget_bytes || pool.budget || 1, m.estimated_bytes, m.measured_bytes);
    const bar = el("div", { class: "bar", title: `measured ${bytes(m.measured_bytes)}, estimated ${bytes(m.estimated_bytes)}, scale ${bytes(scale)} (${m.budget_bytes ? "model budget" : "global budget"})` });
    const meas = el("div", { class: "fill" });
    meas.style.width = (100 * m.measured_bytes) / scale + "%";
    const est = el("div", { class: "fill est" });
    est.style.width = (100 * m.estimated_bytes) / scale + "%";
    bar.append(meas, est);
    return el("div", { class: "membar" }, bar,
      el("span", { class: "small" }, m.measured_bytes ? bytes(m.measured_bytes) : "–", el("span", { class: "muted", text: " / " + bytes(m.estimated_bytes) })));
  }

  function renderModels(models, pool, perf) {
    const perfOf = new Map(((perf && perf.models) || []).map(p => [p.name, p]));
    const rows = models.map(m => {
      const pf = perfOf.get(m.name);
      const speed = pf && pf.tokens_per_second.count
        ? `${num(pf.tokens_per_second.p50)} tok/s · ${num(pf.time_to_first_token_ms.p50, 0)} ms`
        : "–";
      const busy = pending.get(m.name);
      const canUnload = m.state === "ready";
      const action = canUnload ? "unload" : "load";
      const btn = el("button", {
        type: "button", class: "model-action" + (canUnload ? "" : " primary"), "data-action": action,
        disabled: busy || m.state === "loading" || m.state === "unloading",
        onclick: () => act(action, m.name),
      }, busy ? (busy === "load" ? "Loading…" : "Unloading…") : canUnload ? "Unload" : "Load");
      const flags = [m.pinned && "pinned", m.preload && "preload", m.tier && "tier " + m.tier].filter(Boolean).join(", ");
      const note = notes.get(m.name) || m.last_error;
      let stateText = m.state;
      if (m.state === "loading" && m.load_progress) stateText += ` ${Math.round(m.load_progress * 100)}%`;
      return el("tr", { "data-model": m.name },
        el("td", { "data-label": "Model" }, el("strong", { text: m.name }),
          m.aliases && m.aliases.length ? el("div", { class: "small muted", text: "aka " + m.aliases.join(", ") }) : null,
          flags ? el("div", { class: "small muted", text: flags }) : null,
          note ? el("div", { class: "small error-text", text: note }) : null),
        el("td", { "data-label": "State" }, el("span", { class: "pill state " + m.state, text: stateText }),
          m.loaded_at && m.state === "ready" ? el("div", { class: "small muted", text: `loaded ${ago(m.loaded_at)} in ${num(m.load_seconds, 2)} s` }) : null),
        el("td", { class: "num", "data-label": "Priority", text: m.priority }),
        el("td", { "data-label": "Memory" }, memCell(m, pool)),
        el("td", { class: "num", "data-label": "Active / queued", text: `${m.active} / ${m.queued}` }),
        el("td", { class: "num", "data-label": "Requests", text: m.requests + (m.failures ? ` (${m.failures} failed)` : "") }),
        el("td", { class: "num", "data-label": "Tokens", text: m.tokens.toLocaleString("en") }),
        el("td", { class: "num", "data-label": "Speed, TTFT (p50, 5 min)", text: speed }),
        el("td", { "data-label": "Last used", text: ago(m.last_used) }),
        el("td", {}, btn));
    });
    $("models").tBodies[0].replaceChildren(...rows);
  }

  async function act(action, name) {
    pending.set(name, action);
    notes.delete(name);
    if (last) renderModels(last.models, last.status.pool, last.perf);
    setTimeout(poll, 150); // show "loading" while the call runs
    try {
      const r = await call("POST", action === "load" ? "/load_model" : "/unload_model", { model_name: name });
      if (!r.ok) notes.set(name, `${action} failed: ${errorText(r)}`);
    } catch (err) {
      notes.set(name, `${action} failed: ${err.message}`);
    } finally {
      pending.delete(name);
      poll();
    }
  }

  const KIND_CLASS = { load: "ok", eviction: "warn", unload: "", load_failed: "bad", exit: "bad", reload: "ok", reload_rejected: "bad", throttle: "warn", normal: "ok", shed: "bad" };

  function renderEvents(st) {
    const items = (st.events || []).map(e => ({ at: e.at, kind: e.kind, text: [e.model, e.detail, e.seconds ? `${num(e.seconds, 2)} s` : ""].filter(Boolean).join(" · ") }));
    const p = st.platform;
    for (const t of (p && p.transitions) || []) {
      items.push({ at: t.at, kind: t.to, text: `${t.from} → ${t.to}: ${t.reason}` });
    }
    for (const e of (p && p.memory_evictions) || []) {
      items.push({ at: e.at, kind: "eviction", text: `${e.model} · ${e.reason}` });
    }
    items.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    $("events").replaceChildren(...(items.length ? items.slice(0, 100).map(e =>
      el("li", { "data-kind": e.kind }, el("time", { datetime: e.at, title: e.at, text: clock(e.at) }), el("span", { class: "pill " + (KIND_CLASS[e.kind] || ""), text: e.kind }), el("span", { text: e.text }))
    ) : [el("li", { class: "muted" }, el("span"), el("span"), el("span", { text: "nothing yet" }))]));
    const c = st.config || {};
    const parts = [`config ${c.path}`, `sha256 ${(c.hash || "").slice(0, 12)}`];
    if (c.generation) parts.push(`generation ${c.generation}, in force since ${ago(c.loaded_at)}`);
    if (c.reloads) parts.push(`${c.reloads} reloads (${c.rejected} rejected), last ${ago(c.last_reload)}${c.last_trigger ? " by " + c.last_trigger : ""}`);
    if (c.watching !== undefined) parts.push(c.watching ? "file watched" : "file not watched (SIGHUP or jetai-ctl reload)");
    $("reload-error").textContent = c.last_error ? "The last reload was rejected; the running config stays: " + c.last_error : "";
    $("reload-error").classList.toggle("hidden", !c.last_error);
    $("config-line").textContent = parts.join(" · ");
  }

  jetai.header(poll);
  $("pause-button").addEventListener("click", () => {
    paused = !paused;
    $("pause-button").textContent = paused ? "Resume" : "Pause";
    if (!paused) poll(); else clearTimeout(timer);
  });
  window.addEventListener("resize", () => last && renderCharts(last.perf));
  poll();
})();
