// A small SVG line chart for the dashboard: a few series over shared time
// points, a y axis scaled to the data, grid lines and time labels.
"use strict";

const charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function s(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // line draws series (arrays of numbers, one per time in times, which
  // are Date values) into svg. opts: {format(y), area: true to shade the
  // first series}. The svg gets data-max (the largest value) and
  // data-points (the number of non-zero values of the first series), which
  // tests and people can read.
  function line(svg, times, series, opts = {}) {
    const W = Math.max(svg.clientWidth || 300, 200), H = Math.max(svg.clientHeight || 170, 100);
    const pad = { l: 44, r: 8, t: 8, b: 20 };
    const fmt = opts.format || (v => String(Math.round(v)));
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.replaceChildren();
    let max = 0, nonzero = 0;
    for (const ser of series) for (const v of ser) if (v > max) max = v;
    for (const v of series[0] || []) if (v > 0) nonzero++;
    svg.dataset.max = String(max);
    svg.dataset.points = String(nonzero);
    const top = niceMax(max);
    const n = times.length;
    const x = i => pad.l + (n <= 1 ? 0 : (i * (W - pad.l - pad.r)) / (n - 1));
    const y = v => H - pad.b - (v / top) * (H - pad.t - pad.b);
    for (let k = 0; k <= 4; k++) {
      const v = (top * k) / 4, yy = y(v);
      svg.append(s("line", { x1: pad.l, x2: W - pad.r, y1: yy, y2: yy, class: "grid-line" }));
      const t = s("text", { x: pad.l - 5, y: yy + 3, "text-anchor": "end", class: "axis-label" });
      t.textContent = fmt(v);
      svg.append(t);
    }
    if (n > 1) {
      // Labels on whole minutes before now, and "now".
      const now = times[n - 1];
      for (let i = 0; i < n - 1; i++) {
        const secs = Math.round((now - times[i]) / 1000);
        if (secs % 60 !== 0 || x(n - 1) - x(i) < 30) continue;
        const t = s("text", { x: x(i), y: H - 5, "text-anchor": "middle", class: "axis-label" });
        t.textContent = "-" + secs / 60 + " min";
        svg.append(t);
      }
      const last = s("text", { x: x(n - 1), y: H - 5, "text-anchor": "end", class: "axis-label" });
      last.textContent = "now";
      svg.append(last);
    }
    series.forEach((ser, k) => {
      if (!ser.length) return;
      const pts = ser.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      if (k === 0 && opts.area) {
        svg.append(s("path", { d: `M${x(0)},${y(0)} L${pts.join(" L")} L${x(ser.length - 1)},${y(0)} Z`, class: "area-0" }));
      }
      svg.append(s("polyline", { points: pts.join(" "), class: "series-" + k }));
      if (k === 0) {
        ser.forEach((v, i) => {
          if (v > 0) {
            const c = s("circle", { cx: x(i), cy: y(v), r: 2.5, class: "dot-0" });
            const tip = s("title");
            tip.textContent = fmt(v) + " at " + times[i].toLocaleTimeString("en-GB", { hour12: false });
            c.append(tip);
            svg.append(c);
          }
        });
      }
    });
  }

  return { line };
})();
