// Shared by the dashboard and the API docs: the API key, the theme, calls
// to the daemon's REST API and number formatting. No dependencies.
"use strict";

const jetai = (() => {
  const KEY = "jetai.apiKey";
  const THEME = "jetai.theme";

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  function apiKey() { return localStorage.getItem(KEY) || ""; }

  // call sends one request to the API with the key, and returns
  // {status, ok, headers, body (parsed JSON when it is JSON), text}.
  async function call(method, path, body, opts = {}) {
    const headers = Object.assign({}, opts.headers || {});
    const key = apiKey();
    if (key) headers["Authorization"] = "Bearer " + key;
    const init = { method, headers, signal: opts.signal };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const r = await fetch(path, init);
    if (r.status === 401) needKey();
    if (opts.raw) return r;
    const text = await r.text();
    let parsed = null;
    if ((r.headers.get("Content-Type") || "").startsWith("application/json")) {
      try { parsed = JSON.parse(text); } catch (_) { /* shown as text */ }
    }
    return { status: r.status, ok: r.ok, headers: r.headers, body: parsed, text };
  }

  // errorText is the message of an API error answer.
  function errorText(res) {
    if (res.body && res.body.error) return res.status + " " + (res.body.error.code || "") + ": " + res.body.error.message;
    return res.status + " " + (res.text || "").slice(0, 200);
  }

  let keyListeners = [];
  function needKey() { for (const f of keyListeners) f(); }
  function onNeedKey(f) { keyListeners.push(f); }

  // keyDialog asks for the API key and keeps it in this browser.
  function keyDialog(done) {
    let dlg = document.getElementById("key-dialog");
    if (!dlg) {
      const input = el("input", { id: "key-input", type: "password", autocomplete: "off", placeholder: "sk-…", class: "mono" });
      dlg = el("dialog", { id: "key-dialog" },
        el("form", { method: "dialog" },
          el("h3", { text: "API key" }),
          el("p", { class: "muted small", text: "This daemon has server.api_keys set. The key stays in this browser (localStorage) and goes with every API call as Authorization: Bearer." }),
          el("div", { class: "row" }, input),
          el("div", { class: "row", style: null },
            el("button", { value: "save", class: "primary", id: "key-save" }, "Save"),
            el("button", { value: "clear", id: "key-clear" }, "Forget key"),
            el("button", { value: "cancel" }, "Cancel"))));
      dlg.addEventListener("close", () => {
        if (dlg.returnValue === "save") localStorage.setItem(KEY, input.value.trim());
        if (dlg.returnValue === "clear") localStorage.removeItem(KEY);
        if (dlg._done && dlg.returnValue !== "cancel") dlg._done();
      });
      document.body.append(dlg);
    }
    dlg._done = done;
    document.getElementById("key-input").value = apiKey();
    if (!dlg.open) dlg.showModal();
  }

  function applyTheme() {
    const t = localStorage.getItem(THEME);
    if (t) document.documentElement.setAttribute("data-theme", t);
    else document.documentElement.removeAttribute("data-theme");
  }
  function toggleTheme() {
    const dark = document.documentElement.getAttribute("data-theme") === "dark" ||
      (!document.documentElement.getAttribute("data-theme") && matchMedia("(prefers-color-scheme: dark)").matches);
    localStorage.setItem(THEME, dark ? "light" : "dark");
    applyTheme();
  }
  applyTheme();

  // header wires the buttons every page's header has.
  function header(onKey) {
    const kb = document.getElementById("key-button");
    if (kb) kb.addEventListener("click", () => keyDialog(onKey));
    const tb = document.getElementById("theme-button");
    if (tb) tb.addEventListener("click", toggleTheme);
  }

  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  function bytes(n) {
    if (!n) return "0 B";
    let i = 0;
    while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
    return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + UNITS[i];
  }
  function num(n, digits = 1) {
    if (n === undefined || n === null || isNaN(n)) return "–";
    if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en");
    return Number(n).toFixed(digits).replace(/\.0+$/, "");
  }
  function duration(s) {
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function ago(iso) {
    if (!iso) return "never";
    const s = (Date.now() - Date.parse(iso)) / 1000;
    return s < 1 ? "just now" : duration(Math.max(s, 0)) + " ago";
  }
  function clock(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }

  return { el, call, errorText, apiKey, keyDialog, onNeedKey, header, bytes, num, duration, ago, clock };
})();
