// The dashboard's charts: uPlot (vendored, MIT) for the x-y charts, a plain canvas for
// the timeline and parallel coordinates. Every label drawn comes from the data and is
// drawn as canvas text (never parsed as HTML). Colours come from the page's CSS
// variables, so light and dark mode both read.
"use strict";

const Charts = (() => {
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const theme = () => ({
    fg: css("--fg"), muted: css("--muted"), line: css("--line"), accent: css("--accent"),
    pt: css("--pt"), best: css("--best"), good: css("--good"), bad: css("--bad"),
    warn: css("--warn"),
  });
  const STATE_COLOR = (t, state) =>
    ({ COMPLETE: t.good, PRUNED: t.warn, FAIL: t.bad })[state] || t.accent;

  function width(el) {
    return Math.max(240, Math.floor(el.clientWidth || el.parentElement.clientWidth || 400) - 4);
  }

  function axes(t, xLabel, yLabel, xValues) {
    const base = { stroke: t.muted, grid: { stroke: t.line, width: 1 }, ticks: { stroke: t.line } };
    const x = Object.assign({}, base, { label: xLabel });
    if (xValues) x.values = xValues;
    return [x, Object.assign({}, base, { label: yLabel, size: 60 })];
  }

  const scatterPaths = () => null;

  // One uPlot per element, replaced on each draw (the data is small: a few thousand points).
  function plot(el, opts, data) {
    if (el._plot) el._plot.destroy();
    el.textContent = "";
    opts.width = width(el);
    opts.height = opts.height || 240;
    el._plot = new uPlot(opts, data, el);
    return el._plot;
  }

  function history(el, h, objective, log) {
    const t = theme();
    const data = uPlot.join([[h.x, h.y], [h.best_x.concat(h.last != null ? [h.last] : []),
      h.best_y.concat(h.best_y.length && h.last != null ? [h.best_y[h.best_y.length - 1]] : [])]]);
    plot(el, {
      scales: { x: { time: false }, y: { distr: log ? 3 : 1 } },
      axes: axes(t, "trial", objective),
      legend: { show: true },
      series: [
        { label: "trial" },
        { label: objective, stroke: t.pt, paths: scatterPaths, points: { show: true, size: 4,
          stroke: t.pt, fill: t.pt } },
        { label: "best so far", stroke: t.best, width: 2, spanGaps: true,
          paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
      ],
    }, data);
  }

  // A study of several objectives: two of them against each other, the Pareto front's
  // trials in the "best" colour, other feasible trials as points, infeasible ones muted.
  function front(el, xLabel, yLabel, xs, ys, kinds) {
    const t = theme();
    const groups = ["front", "feasible", "infeasible"].map((kind) => {
      const idx = kinds.map((k, i) => i).filter((i) => kinds[i] === kind && xs[i] != null &&
        ys[i] != null).sort((a, b) => xs[a] - xs[b]);
      return [idx.map((i) => xs[i]), idx.map((i) => ys[i])];
    });
    const dot = (color, size) => ({ paths: scatterPaths, stroke: color,
      points: { show: true, size, stroke: color, fill: color } });
    plot(el, {
      height: 260,
      scales: { x: { time: false } },
      axes: axes(t, xLabel, yLabel),
      legend: { show: true },
      series: [
        { label: xLabel },
        Object.assign({ label: "Pareto front" }, dot(t.best, 7)),
        Object.assign({ label: "feasible" }, dot(t.pt, 4)),
        Object.assign({ label: "infeasible" }, dot(t.muted, 4)),
      ],
    }, uPlot.join(groups));
  }

  function curves(el, c, objective) {
    const t = theme();
    if (!c.trials.length) return empty(el, "No trial reported intermediate values.");
    const data = uPlot.join(c.trials.map((tr) => [tr.steps, tr.values]));
    const series = [{ label: "step" }].concat(c.trials.map((tr) => ({
      label: "#" + tr.number + " " + tr.state,
      stroke: tr.state === "PRUNED" ? t.warn : tr.state === "FAIL" ? t.bad : t.pt,
      dash: tr.state === "PRUNED" ? [4, 3] : undefined,
      width: 1, spanGaps: true, points: { show: false },
    })));
    plot(el, { scales: { x: { time: false } }, axes: axes(t, "step", objective),
      legend: { show: false }, series }, data);
  }

  function distribution(el, d, objective) {
    const t = theme();
    if (!d.x.length) return empty(el, "No completed trial yet.");
    plot(el, { scales: { x: { time: false } }, axes: axes(t, objective, "fraction ≤ value"),
      legend: { show: false },
      series: [{}, { stroke: t.accent, width: 2, paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false } }] }, [d.x, d.y]);
  }

  function steps(el, xs, ys, label) {
    const t = theme();
    plot(el, { height: 180, scales: { x: { time: false } }, axes: axes(t, "step", label),
      legend: { show: false },
      series: [{}, { stroke: t.accent, width: 2, points: { show: true, size: 4 } }] }, [xs, ys]);
  }

  // Two parameters against each other: the plane cut in a grid of cells, each coloured by
  // the best value among the sampled trials in it (a binned contour), the trials on top.
  function pair(el, ax, ay, xs, ys, values, minimize) {
    const t = theme();
    const height = 300, left = 46, bottom = 34, cells = 24;
    const [g, w] = canvas(el, height);
    const sx = scaleOf(ax, xs), sy = scaleOf(ay, ys);
    const pw = w - left - 8, ph = height - bottom - 8;
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const span = hi - lo || 1;
    const good = (v) => (minimize ? (hi - v) / span : (v - lo) / span); // 1: best
    const best = new Map();
    const points = [];
    for (let i = 0; i < values.length; i++) {
      const u = sx(xs[i]), v = sy(ys[i]);
      if (u == null || v == null) continue;
      points.push([u, v, good(values[i])]);
      const key = Math.min(cells - 1, Math.floor(u * cells)) * cells +
        Math.min(cells - 1, Math.floor(v * cells));
      best.set(key, Math.max(best.get(key) ?? 0, good(values[i])));
    }
    for (const [key, q] of best) {
      g.globalAlpha = 0.15 + 0.6 * q * q;
      g.fillStyle = t.best;
      const i = Math.floor(key / cells), j = key % cells;
      g.fillRect(left + (i * pw) / cells, 8 + ph - ((j + 1) * ph) / cells, pw / cells + 0.5,
        ph / cells + 0.5);
    }
    g.globalAlpha = 0.8;
    g.fillStyle = t.fg;
    for (const [u, v] of points) g.fillRect(left + u * pw - 1, 8 + ph - v * ph - 1, 2, 2);
    g.globalAlpha = 1;
    g.strokeStyle = t.muted; g.strokeRect(left, 8, pw, ph);
    g.fillStyle = t.fg; g.font = "11px system-ui, sans-serif";
    const [x0, x1] = ends(ax), [y0, y1] = ends(ay);
    g.textAlign = "left"; g.fillText(x0, left, height - bottom + 14);
    g.textAlign = "right"; g.fillText(x1, left + pw, height - bottom + 14);
    g.textAlign = "center"; g.fillText(ax.name.slice(0, 40), left + pw / 2, height - 6);
    g.save(); g.translate(12, 8 + ph / 2); g.rotate(-Math.PI / 2);
    g.fillText(ay.name.slice(0, 40), 0, 0); g.restore();
    g.textAlign = "right"; g.fillText(y1, left - 3, 16); g.fillText(y0, left - 3, 8 + ph);
  }

  function ends(axis) {
    if (axis.kind === "categorical") {
      const c = axis.choices;
      return [String(c[0] ?? "").slice(0, 12), String(c[c.length - 1] ?? "").slice(0, 12)];
    }
    return [String(+axis.low.toPrecision(3)), String(+axis.high.toPrecision(3))];
  }

  function slice(el, axis, xs, ys, objective) {
    const t = theme();
    const pairs = [];
    for (let i = 0; i < xs.length; i++) if (xs[i] != null) pairs.push([xs[i], ys[i]]);
    pairs.sort((a, b) => a[0] - b[0]);
    const cat = axis.kind === "categorical";
    const jitter = cat ? pairs.map((p, i) => p[0] + ((i * 0.618) % 1 - 0.5) * 0.4) : null;
    const xv = cat ? (u, splits) => splits.map((s) => Number.isInteger(s) ?
      (axis.choices[s] ?? "") : "") : undefined;
    const x = cat ? jitter : pairs.map((p) => p[0]);
    const order = x.map((v, i) => i).sort((a, b) => x[a] - x[b]);
    plot(el, {
      height: 200,
      scales: { x: { time: false, distr: axis.log ? 3 : 1,
        range: cat ? [-0.5, axis.choices.length - 0.5] : undefined } },
      axes: axes(t, axis.name, objective, xv),
      legend: { show: false },
      series: [{}, { stroke: t.pt, paths: scatterPaths, points: { show: true, size: 4,
        stroke: t.pt, fill: t.pt } }],
    }, [order.map((i) => x[i]), order.map((i) => pairs[i][1])]);
    if (cat) el._plot.axes[0].splits = () => axis.choices.map((c, i) => i);
  }

  function spread(el, curvesBySampler, objective) {
    const t = theme();
    const labels = Object.keys(curvesBySampler);
    const palette = [t.accent, t.best, t.good, t.bad, t.warn, "#8957e5", "#1f9aa8", "#a0a0a0"];
    const x = curvesBySampler[labels[0]].x;
    const data = [x];
    const series = [{ label: "trial" }];
    const bands = [];
    labels.forEach((label, i) => {
      const c = curvesBySampler[label];
      const color = palette[i % palette.length];
      data.push(c.high, c.median, c.low);
      series.push({ label: label + " q75", stroke: color, width: 0, points: { show: false } });
      series.push({ label: label + " median", stroke: color, width: 2, points: { show: false } });
      series.push({ label: label + " q25", stroke: color, width: 0, points: { show: false } });
      const base = 1 + 3 * i;
      bands.push({ series: [base, base + 2], fill: color + "33" });
    });
    // a log axis when every value is positive and they span more than a factor of 100
    const all = data.slice(1).flat().filter((v) => v != null);
    const log = all.length && all.every((v) => v > 0) && Math.max(...all) / Math.min(...all) > 100;
    plot(el, { height: 280, scales: { x: { time: false }, y: { distr: log ? 3 : 1 } }, bands,
      axes: axes(t, "trial", "best so far (" + objective + ")"), series }, data);
  }

  // -- canvas charts -------------------------------------------------------------------

  function canvas(el, height) {
    el.textContent = "";
    const c = document.createElement("canvas");
    c.className = "plain";
    c.setAttribute("role", "img"); // (named by its figure's caption)
    const named = el.closest("figure");
    if (named && named.getAttribute("aria-label")) c.setAttribute("aria-label", named.getAttribute("aria-label"));
    const ratio = window.devicePixelRatio || 1;
    const w = width(el);
    c.width = w * ratio; c.height = height * ratio;
    c.style.height = height + "px";
    el.appendChild(c);
    const g = c.getContext("2d");
    g.scale(ratio, ratio);
    return [g, w];
  }

  function timeline(el, tl) {
    const t = theme();
    const n = tl.number.length;
    if (!n) return empty(el, "No trial started yet.");
    const rows = tl.workers.length;
    const rowH = Math.max(6, Math.min(22, 260 / rows));
    const left = 120, top = 6, height = rows * rowH + 30;
    const [g, w] = canvas(el, height);
    let t0 = Infinity, t1 = -Infinity;
    for (let i = 0; i < n; i++) { t0 = Math.min(t0, tl.start[i]); t1 = Math.max(t1, tl.end[i]); }
    const span = Math.max(t1 - t0, 1e-3);
    const X = (s) => left + ((s - t0) / span) * (w - left - 10);
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = t.muted; g.textBaseline = "middle";
    if (rowH >= 10) {
      tl.workers.forEach((name, i) => {
        const label = name.length > 18 ? name.slice(0, 17) + "…" : name;
        g.fillText(label, 2, top + i * rowH + rowH / 2);
      });
    }
    for (let i = 0; i < n; i++) {
      g.fillStyle = STATE_COLOR(t, tl.state[i]);
      const x = X(tl.start[i]);
      g.fillRect(x, top + tl.worker[i] * rowH + 1, Math.max(1, X(tl.end[i]) - x), rowH - 2);
    }
    g.fillStyle = t.muted; g.textBaseline = "top";
    const at = (s) => (s >= 120 ? (s / 60).toFixed(1) + " min" : s.toFixed(1) + " s");
    g.fillText(at(t0), left, top + rows * rowH + 6);
    g.textAlign = "right"; g.fillText(at(t1), w - 10, top + rows * rowH + 6);
  }

  function parallel(el, pts, objective, minimize) {
    const t = theme();
    if (!pts.numbers.length || !pts.axes.length) return empty(el, "No completed trial yet.");
    const height = 300, pad = 36;
    const [g, w] = canvas(el, height);
    const n = pts.axes.length + 1;
    const X = (i) => 40 + (i * (w - 90)) / (n - 1);
    const unit = pts.axes.map((a, j) => scaleOf(a, pts.coords[j]));
    const vals = pts.values;
    const vScale = scaleOf({ kind: "numeric" }, vals);
    // worst first, so the best lines are drawn on top
    const order = vals.map((v, i) => i).sort((a, b) => minimize ? vals[b] - vals[a] : vals[a] - vals[b]);
    const topFrom = Math.floor(order.length * 0.9); // the best tenth, drawn last in orange
    g.lineWidth = 1;
    order.forEach((i, rank) => {
      const q = vScale(vals[i]);
      const top = rank >= topFrom;
      g.strokeStyle = top ? t.best : t.pt;
      g.globalAlpha = top ? 0.9 : 0.25;
      g.beginPath();
      let pen = false;
      for (let j = 0; j < n; j++) {
        const u = j < n - 1 ? unit[j](pts.coords[j][i]) : q;
        if (u == null) { pen = false; continue; }
        const y = pad + (1 - u) * (height - 2 * pad);
        if (pen) g.lineTo(X(j), y); else g.moveTo(X(j), y);
        pen = true;
      }
      g.stroke();
    });
    g.globalAlpha = 1;
    g.strokeStyle = t.muted; g.fillStyle = t.fg; g.font = "11px system-ui, sans-serif";
    g.textAlign = "center";
    const names = pts.axes.map((a) => a.name).concat([objective]);
    for (let j = 0; j < n; j++) {
      g.beginPath(); g.moveTo(X(j), pad); g.lineTo(X(j), height - pad); g.stroke();
      const label = names[j].length > 16 ? names[j].slice(0, 15) + "…" : names[j];
      g.fillText(label, X(j), height - pad + 16);
    }
  }

  // A function from an axis's coordinate to [0, 1] (log axes on the log scale).
  function scaleOf(axis, coords) {
    if (axis.kind === "categorical") {
      const k = Math.max(1, axis.choices.length - 1);
      return (v) => (v == null ? null : v / k);
    }
    const f = axis.log ? Math.log : (v) => v;
    let lo = Infinity, hi = -Infinity;
    for (const v of coords) if (v != null) { lo = Math.min(lo, f(v)); hi = Math.max(hi, f(v)); }
    if (axis.low != null) { lo = f(axis.low); hi = f(axis.high); }
    const span = hi - lo || 1;
    return (v) => (v == null ? null : (f(v) - lo) / span);
  }

  function empty(el, text) {
    if (el._plot) { el._plot.destroy(); el._plot = null; }
    el.textContent = "";
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = text;
    el.appendChild(p);
  }

  return { history, front, curves, distribution, steps, pair, slice, spread, timeline, parallel, empty };
})();
