// The API documentation page: renders /openapi.json (endpoints, request
// and answer schemas, errors) and lets people try each endpoint against
// this daemon, with the API key when one is set.
"use strict";

(() => {
  const { el, call } = jetai;
  const $ = id => document.getElementById(id);
  let doc = null;

  function resolve(ref) {
    let v = doc;
    for (const p of ref.replace(/^#\//, "").split("/")) v = v[p.replace(/~1/g, "/").replace(/~0/g, "~")];
    return v;
  }
  const refName = ref => ref.split("/").pop();
  const schemaLink = ref => el("a", { href: "#schema-" + refName(ref), class: "type", text: refName(ref) });

  // typeOf is a one-line description of a schema's type.
  function typeOf(s) {
    if (!s) return "any";
    if (s.$ref) return refName(s.$ref);
    if (s.enum) return s.enum.map(v => JSON.stringify(v)).join(" | ");
    if (s.oneOf) return s.oneOf.map(typeOf).join(" | ");
    let t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || (s.properties ? "object" : "any");
    if (s.type === "array" || (Array.isArray(s.type) && s.type.includes("array"))) t = t.replace("array", "array of " + typeOf(s.items));
    if (s.format) t += ` (${s.format})`;
    const r = [];
    if (s.minimum !== undefined) r.push("≥ " + s.minimum);
    if (s.maximum !== undefined) r.push("≤ " + s.maximum);
    if (s.minItems !== undefined) r.push(`≥ ${s.minItems} items`);
    if (s.maxItems !== undefined) r.push(`≤ ${s.maxItems} items`);
    if (r.length) t += " " + r.join(", ");
    if (s.additionalProperties && typeof s.additionalProperties === "object") t = "map of " + typeOf(s.additionalProperties);
    return t;
  }

  // props collects the properties and required names of a schema,
  // following allOf and $ref.
  function props(s, seen = new Set()) {
    if (!s) return { p: {}, req: [] };
    if (s.$ref) {
      if (seen.has(s.$ref)) return { p: {}, req: [] };
      seen.add(s.$ref);
      return props(resolve(s.$ref), seen);
    }
    // The schema's own fields first, then those it takes from allOf.
    const p = Object.assign({}, s.properties || {});
    let req = (s.required || []).slice();
    for (const sub of s.allOf || []) {
      const r = props(sub, seen);
      for (const [k, v] of Object.entries(r.p)) if (!(k in p)) p[k] = v;
      req = req.concat(r.req);
    }
    return { p, req };
  }

  // schemaTree renders a schema's fields, nesting objects up to depth 3;
  // named schemas link to their section below.
  function schemaTree(s, depth = 0) {
    const box = el("div", { class: "schema" });
    if (!s) return box;
    if (s.$ref && depth > 0) return box;
    const target = s.$ref ? resolve(s.$ref) : s;
    if (target.description && depth === 0) box.append(el("div", { class: "desc", text: target.description }));
    if (target.oneOf) {
      box.append(el("div", { class: "muted small", text: "One of:" }));
      for (const alt of target.oneOf) {
        box.append(el("div", { class: "prop" }, alt.$ref ? schemaLink(alt.$ref) : el("span", { class: "type", text: typeOf(alt) }),
          alt.$ref || !(alt.properties || alt.allOf) ? null : schemaTree(alt, depth + 1)));
      }
    }
    const { p, req } = props(target);
    for (const [name, ps] of Object.entries(p)) {
      const type = ps.$ref ? schemaLink(ps.$ref) : el("span", { class: "type", text: typeOf(ps) });
      const row = el("div", { class: "prop" },
        el("span", { class: "name", text: name }), " ", type,
        req.includes(name) ? el("span", { class: "req", text: " required" }) : null,
        ps.description ? el("div", { class: "desc", text: ps.description }) : null);
      const inner = ps.type === "array" && ps.items && !ps.items.$ref ? ps.items : ps;
      if (depth < 3 && !inner.$ref && (inner.properties || inner.allOf)) row.append(schemaTree(inner, depth + 1));
      box.append(row);
    }
    if (target.type === "array" && target.items && depth === 0) {
      box.append(el("div", { class: "prop" }, el("span", { class: "muted", text: "items: " }), target.items.$ref ? schemaLink(target.items.$ref) : el("span", { class: "type", text: typeOf(target.items) })));
    }
    if (!Object.keys(p).length && !target.oneOf && target.type !== "array") {
      box.append(el("span", { class: "type", text: typeOf(target) }));
    }
    return box;
  }

  // example builds a request body to start from.
  function example(s, depth = 0) {
    if (!s || depth > 4) return null;
    if (s.example !== undefined) return s.example;
    if (s.$ref) return example(resolve(s.$ref), depth + 1);
    if (s.enum) return s.enum[0];
    const t = Array.isArray(s.type) ? s.type[0] : s.type;
    if (t === "object" || s.properties || s.allOf) {
      const { p, req } = props(s);
      const o = {};
      for (const k of req) o[k] = example(p[k], depth + 1);
      return o;
    }
    if (t === "array") return [example(s.items, depth + 1)].filter(v => v !== null);
    if (t === "string") return "";
    if (t === "integer" || t === "number") return s.minimum || 0;
    if (t === "boolean") return false;
    return null;
  }

  function operation(path, method, op) {
    const id = "op-" + (op.operationId || method + path.replace(/\W+/g, "-"));
    const open = op.security && op.security.length === 0;
    const det = el("details", { class: "card op", id, "data-path": path, "data-method": method },
      el("summary", {},
        el("span", { class: "method " + method, text: method.toUpperCase() }),
        el("span", { class: "path", text: path }),
        el("span", { class: "muted", text: op.summary || "" }),
        open ? el("span", { class: "pill", text: "no key" }) : null));
    const body = el("div", {});
    det.append(body);
    det.addEventListener("toggle", () => { if (det.open && !body.childElementCount) fill(); });
    function fill() {
      if (op.description) body.append(el("p", { text: op.description }));
      const params = op.parameters || [];
      if (params.length) {
        body.append(el("h4", { text: "Parameters" }));
        for (const p of params) body.append(el("div", { class: "schema" }, el("div", { class: "prop" }, el("span", { class: "name", text: p.name }), " ", el("span", { class: "type", text: `${typeOf(p.schema)} in ${p.in}` }), p.required ? el("span", { class: "req", text: " required" }) : null)));
      }
      const rb = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (rb) {
        body.append(el("h4", { text: "Request body" + (op.requestBody.required ? "" : " (optional)") }));
        body.append(schemaTree(rb.schema));
      }
      body.append(el("h4", { text: "Answers" }));
      for (const [code, r0] of Object.entries(op.responses || {})) {
        const r = r0.$ref ? resolve(r0.$ref) : r0;
        const row = el("div", { class: "schema" }, el("div", { class: "prop" }, el("span", { class: "resp-code", text: code }), " ", el("span", { text: r.description || "" })));
        for (const [ct, c] of Object.entries(r.content || {})) {
          row.firstChild.append(el("div", { class: "small" }, el("span", { class: "muted", text: ct + " " }),
            c.schema && c.schema.$ref ? schemaLink(c.schema.$ref) : el("span", { class: "type", text: typeOf(c.schema) }),
            c.description ? el("span", { class: "muted", text: " — " + c.description }) : null));
        }
        if (r.headers) row.firstChild.append(el("div", { class: "small muted", text: "headers: " + Object.keys(r.headers).join(", ") }));
        body.append(row);
      }
      body.append(tryIt(path, method, op, rb));
    }
    return det;
  }

  function tryIt(path, method, op, rb) {
    const box = el("div", { class: "tryit" }, el("h4", { text: "Try it" }));
    const inputs = {};
    for (const p of op.parameters || []) {
      if (p.in !== "path") continue;
      inputs[p.name] = el("input", { value: p.example || "", "aria-label": p.name, placeholder: p.name });
      box.append(el("div", { class: "row" }, el("label", { class: "mono", text: p.name }), inputs[p.name]));
    }
    let ta = null;
    if (rb) {
      ta = el("textarea", { class: "mono", spellcheck: "false", "aria-label": "request body" });
      ta.value = JSON.stringify(example(rb.schema), null, 2);
      box.append(ta);
    }
    const out = el("div", { class: "result" });
    const send = el("button", { type: "button", class: "primary try-send" }, "Send");
    const curl = el("pre", { class: "small" });
    const url = () => path.replace(/\{(\w+)\}/g, (_, n) => encodeURIComponent(inputs[n] ? inputs[n].value : ""));
    const showCurl = () => {
      const key = jetai.apiKey() ? ` -H 'Authorization: Bearer ${jetai.apiKey().slice(0, 4)}…'` : "";
      const b = ta ? ` -H 'Content-Type: application/json' -d '${ta.value.replace(/\s*\n\s*/g, " ").replace(/'/g, "'\\''")}'` : "";
      curl.textContent = `curl -sN${method === "get" ? "" : " -X " + method.toUpperCase()} ${location.origin}${url()}${key}${b}`;
    };
    if (ta) ta.addEventListener("input", showCurl);
    for (const i of Object.values(inputs)) i.addEventListener("input", showCurl);
    showCurl();
    send.addEventListener("click", async () => {
      send.disabled = true;
      out.replaceChildren(el("span", { class: "muted", text: "waiting…" }));
      const started = performance.now();
      try {
        const r = await call(method.toUpperCase(), url(), ta ? ta.value : undefined, { raw: true });
        const ct = r.headers.get("Content-Type") || "";
        const status = el("div", { class: "row" }, el("span", { class: "pill " + (r.ok ? "ok" : "bad"), text: `${r.status} ${r.statusText}` }), el("span", { class: "muted small try-meta", text: ct }));
        const pre = el("pre", { class: "try-body" });
        out.replaceChildren(status, pre);
        const ra = r.headers.get("Retry-After");
        if (ra) status.append(el("span", { class: "small", text: "Retry-After: " + ra }));
        if (ct.startsWith("text/event-stream") && r.body) {
          const reader = r.body.getReader(), dec = new TextDecoder();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            pre.textContent += dec.decode(value, { stream: true });
          }
        } else {
          const text = await r.text();
          try { pre.textContent = ct.startsWith("application/json") ? JSON.stringify(JSON.parse(text), null, 2) : text.slice(0, 4000); }
          catch (_) { pre.textContent = text; }
        }
        status.append(el("span", { class: "muted small", text: `${Math.round(performance.now() - started)} ms` }));
      } catch (err) {
        out.replaceChildren(el("span", { class: "error-text", text: "request failed: " + err.message }));
      } finally {
        send.disabled = false;
      }
    });
    box.append(el("div", { class: "row" }, send), curl, out);
    return box;
  }

  function render() {
    const info = doc.info || {};
    $("version").textContent = (/^\d+\.\d/.test(info.version) ? "v" : "") + info.version;
    document.title = `${info.title} API ${info.version}`;
    $("intro").replaceChildren(
      el("h2", { text: `${info.title} ${info.version} · OpenAPI ${doc.openapi}` }),
      info.summary ? el("p", { text: info.summary }) : null,
      el("p", { text: info.description || "" }),
      el("p", { class: "small muted" }, "The machine-readable document: ", el("a", { href: "/openapi.json", text: "/openapi.json" }), ". Try it sends requests to this daemon with the key from the API key button."));
    const byTag = new Map();
    for (const t of doc.tags || []) byTag.set(t.name, []);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!["get", "post", "put", "delete", "patch"].includes(method)) continue;
        const tag = (op.tags && op.tags[0]) || "Other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, op]);
      }
    }
    const toc = [], ops = [];
    for (const [tag, list] of byTag) {
      if (!list.length) continue;
      const tdesc = (doc.tags || []).find(t => t.name === tag);
      toc.push(el("h3", { text: tag }));
      ops.push(el("h2", { class: "tag", text: tag }), tdesc && tdesc.description ? el("p", { class: "muted", text: tdesc.description }) : null);
      for (const [path, method, op] of list) {
        const node = operation(path, method, op);
        ops.push(node);
        toc.push(el("a", { href: "#" + node.id, "data-path": path }, el("span", { class: "method " + method, text: method.toUpperCase() }), " ", path));
      }
    }
    $("toc").replaceChildren(...toc);
    $("ops").replaceChildren(...ops.filter(Boolean));
    const schemas = (doc.components && doc.components.schemas) || {};
    $("schemas").replaceChildren(...Object.keys(schemas).sort().map(name =>
      el("details", { id: "schema-" + name, class: "schema-def" }, el("summary", {}, el("span", { class: "name mono", text: name })), schemaTree(schemas[name]))));
    // Links to a schema open it.
    document.addEventListener("click", e => {
      const a = e.target.closest && e.target.closest("a[href^='#']");
      if (!a) return;
      const target = document.getElementById(a.getAttribute("href").slice(1));
      if (target && target.tagName === "DETAILS") target.open = true;
    });
    openHash();
    window.addEventListener("hashchange", openHash);
  }

  // openHash opens and shows the operation or schema the URL names.
  function openHash() {
    if (!location.hash) return;
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") { target.open = true; target.scrollIntoView(); }
  }

  $("filter").addEventListener("input", e => {
    const q = e.target.value.toLowerCase();
    for (const n of document.querySelectorAll("#ops .op, #toc a")) {
      const p = (n.dataset.path || "") + " " + n.textContent;
      n.classList.toggle("hidden", q !== "" && !p.toLowerCase().includes(q));
    }
  });

  // On a phone the list of endpoints starts folded: the filter finds them.
  if (matchMedia("(max-width: 820px)").matches) $("toc-details").open = false;
  jetai.header(() => {});
  (async () => {
    try {
      const r = await call("GET", "/openapi.json");
      if (!r.ok || !r.body) throw new Error(jetai.errorText(r));
      doc = r.body;
      render();
    } catch (err) {
      $("error").textContent = "Cannot load /openapi.json: " + err.message;
      $("error").classList.remove("hidden");
    }
  })();
})();
