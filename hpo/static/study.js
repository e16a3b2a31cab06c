// The study page of the hpo dashboard: its charts (charts.js), the trial table with its
// sorting, filters and pages, a trial's detail, and the actions. Uses the helpers of
// app.js (h, api, studyApi, act, ...), which runs the page; loaded before it.
// Text from the database is set with textContent only (the `h` helper).
"use strict";

// -- a study -----------------------------------------------------------------------------

function studyView(main, name) {
  const head = h("div");
  const actions = h("div", { class: "actions" });
  const fig = (key, title) => {
    const note = h("span", { class: "muted" });
    const box = h("div", { class: "chart", "data-chart": key });
    return { note, box, el: h("figure", { "aria-label": title }, h("figcaption", {}, title, " ", note), box) };
  };
  const F = {
    front: fig("front", "Pareto front"),
    history: fig("history", "Optimization history"),
    importance: fig("importance", "Parameter importance"),
    curves: fig("curves", "Intermediate values"),
    distribution: fig("distribution", "Empirical distribution of values"),
    timeline: fig("timeline", "Timeline of trials per worker"),
    parallel: fig("parallel", "Parallel coordinates"),
    pair: fig("pair", "Two parameters"),
  };
  const pairX = h("select", { "aria-label": "first parameter", onchange: () => drawPair() });
  const pairY = h("select", { "aria-label": "second parameter", onchange: () => drawPair() });
  F.pair.note.append(pairX, " × ", pairY);
  F.front.el.hidden = true;  // shown for a study of several objectives
  const frontCount = h("span");
  const frontX = h("select", { "aria-label": "first objective", onchange: () => drawFront() });
  const frontY = h("select", { "aria-label": "second objective", onchange: () => drawFront() });
  const frontPick = h("span", {}, " ", frontX, " × ", frontY);
  F.front.note.append(frontCount, frontPick);
  const slices = h("div", { class: "slices", "data-chart": "slices" });
  const table = trialTable(name);
  main.append(h("p", {}, h("a", { href: "#/", text: "← Studies" })), head, actions,
    h("div", { class: "grid" }, Object.values(F).map((f) => f.el)),
    h("h2", { text: "Slice plots" }), slices, h("h2", { id: "trials", text: "Trials" }), table.el);

  let version = null, info = null, lastImportance = 0, charts = null;
  const onResize = () => charts && drawCharts(charts);
  window.addEventListener("resize", onResize);

  function drawHead(s) {
    const c = s.counts;
    const finished = (c.COMPLETE || 0) + (c.PRUNED || 0) + (c.FAIL || 0);
    const item = (k, v) => h("div", {}, h("dt", { text: k }), h("dd", {}, v));
    head.textContent = "";
    head.append(h("h1", { text: s.name }), h("dl", { class: "cards" },
      item("direction", s.directions.join(", ")),
      item("sampler", s.sampler), item("pruner", s.pruner),
      item("budget", s.budget ? [h("progress", { max: s.budget, value: s.counted,
        "aria-label": "budget" }), " " + s.counted + "/" + s.budget] : "no limit"),
      item("trials", STATES.filter((k) => c[k]).map((k) => h("span", { class: "state-" + k,
        text: c[k] + " " + k.toLowerCase() + " " }))),
      s.front_size != null ? item("Pareto front", s.front_size + " trials (hpo best)") :
        item("best", s.best_number == null ? "–" : [fmt(s.best_value), " (#" + s.best_number + ")"]),
      item("finished", String(finished)),
      s.comparison ? item("comparison", h("a", { href: "#/compare/" + enc(s.comparison),
        text: s.comparison })) : null));
  }

  function drawCharts(c) {
    const objective = c.objective;
    const minimize = info.directions[0] === "minimize";
    const hst = c.history;
    F.history.note.textContent = hst.total > hst.shown ?
      "(" + hst.total + " completed; " + hst.shown + " points drawn: each run's low and high)" :
      "(" + hst.total + " completed)";
    F.history.box.dataset.last = hst.last == null ? "" : String(hst.last);
    F.history.box.dataset.points = String(hst.shown);
    if (hst.total) {
      const positive = hst.y.every((v) => v > 0);
      const ys = hst.y.filter((v) => v > 0);
      const wide = positive && ys.length && Math.max(...ys) / Math.min(...ys) > 1e3;
      Charts.history(F.history.box, hst, objective, wide);
    } else Charts.empty(F.history.box, "No completed trial yet.");
    Charts.curves(F.curves.box, c.curves, objective);
    F.curves.note.textContent = c.curves.total > c.curves.trials.length ?
      "(the latest " + c.curves.trials.length + " of " + c.curves.total + "; pruned dashed)" :
      "(pruned dashed)";
    Charts.distribution(F.distribution.box, c.distribution, objective);
    Charts.timeline(F.timeline.box, c.timeline);
    F.timeline.note.textContent = "(" + c.timeline.workers.length + " workers; the latest " +
      c.timeline.number.length + " of " + c.timeline.total + " trials)";
    Charts.parallel(F.parallel.box, c.points, objective, minimize);
    F.parallel.note.textContent = c.points.total > c.points.shown ?
      "(" + c.points.shown + " of " + c.points.total + ": the best fifth and a spread of the rest; best in orange)" :
      "(best tenth in orange)";
    drawPair();
    drawFront();
    slices.textContent = "";
    c.points.axes.forEach((axis, j) => {
      const box = h("div", { class: "chart" });
      slices.append(h("figure", { "aria-label": "slice " + axis.name },
        h("figcaption", { text: axis.name }), box));
      Charts.slice(box, axis, c.points.coords[j], c.points.values, objective);
    });
  }

  function drawPair() {
    const axes = charts ? charts.points.axes : [];
    if (axes.length < 2) return Charts.empty(F.pair.box, "Needs two parameters.");
    if (pairX.options.length !== axes.length) {
      for (const select of [pairX, pairY]) {
        select.textContent = "";
        select.append(...axes.map((a, i) => h("option", { value: i, text: a.name })));
      }
      pairY.value = "1";
    }
    const i = Number(pairX.value), j = Number(pairY.value);
    const p = charts.points;
    Charts.pair(F.pair.box, axes[i], axes[j], p.coords[i], p.coords[j], p.values,
      info.directions[0] === "minimize");
  }

  function drawFront() {
    const fr = charts ? charts.front : null;
    F.front.el.hidden = !fr;
    if (!fr) return;
    const names = charts.objectives;
    if (frontX.options.length !== names.length) {
      for (const select of [frontX, frontY]) {
        select.textContent = "";
        select.append(...names.map((n, i) => h("option", { value: i, text: n })));
      }
      frontY.value = "1";
    }
    frontPick.hidden = names.length < 3;
    frontCount.textContent = "(" + fr.front_size + " on the front of " + fr.total + " completed" +
      (fr.total > fr.shown ? "; " + fr.shown + " drawn" : "") + ")";
    F.front.box.dataset.front = String(fr.front_size);
    if (!fr.total) return Charts.empty(F.front.box, "No completed trial yet.");
    const i = Number(frontX.value), j = Number(frontY.value);
    Charts.front(F.front.box, names[i], names[j], fr.values[i], fr.values[j], fr.kind);
  }

  async function drawImportance(asked) {
    const data = await (asked || api(studyApi("importance", name)));
    const box = F.importance.box;
    box.textContent = "";
    const entries = Object.entries(data.importance);
    F.importance.note.textContent = "(PED-ANOVA over " + (data.judged < data.completed ?
      "an even spread of " + data.judged + " of " : "") + data.completed + " completed trials)";
    if (!entries.length) return Charts.empty(box, "Needs a few completed trials.");
    box.append(h("div", { class: "bars", role: "list" }, entries.map(([p, v]) => [
      h("span", { role: "listitem", text: p }),
      h("div", { class: "bar", style: null, "aria-hidden": "true" }),
      h("span", { class: "num", text: (100 * v).toFixed(1) + " %" })])));
    box.querySelectorAll(".bar").forEach((bar, i) => {
      bar.style.width = Math.max(0.5, 100 * entries[i][1]) + "%";
    });
  }

  async function tick() {
    // the first time, the charts and the importance are wanted whatever the version:
    // ask for them with the study, not after it
    const fresh = version === null;
    const importance = Date.now() - lastImportance > IMPORTANCE_MS;
    const early = fresh ? api(studyApi("charts", name)) : null;
    const earlyImportance = fresh && importance ? api(studyApi("importance", name)) : null;
    const earlyTrials = fresh ? table.ask() : null;
    for (const p of [early, earlyImportance, earlyTrials]) if (p) p.catch(() => {}); // (awaited below)
    const s = await api(studyApi("study", name));
    info = s;
    if (s.version === version) return;
    version = s.version;
    drawHead(s);
    if (fresh) drawActions(s);
    if (importance) lastImportance = Date.now();
    await Promise.all([
      (early || api(studyApi("charts", name))).then((c) => { charts = c; drawCharts(c); }),
      table.refresh(s, earlyTrials),
      importance ? drawImportance(earlyImportance) : null,
    ]);
    say("updated " + new Date().toLocaleTimeString());
    // when the page was first complete, in ms since navigation began (bench/dashboard.py)
    if (!document.body.dataset.rendered) {
      document.body.dataset.rendered = String(Math.round(performance.now()));
    }
  }

  async function drawActions(s) {
    const may = (await accessKnown.catch(() => "none")) === "write";
    actions.textContent = "";
    if (!may) return;
    actions.append(
      h("button", { type: "button", onclick: () => enqueueAction(s) }, "Enqueue a point…"),
      h("button", { type: "button", onclick: () => budgetAction(s) }, "Change the budget…"),
      h("button", { type: "button", onclick: () => choiceAction(s, "sampler") }, "Change the sampler…"),
      h("button", { type: "button", onclick: () => choiceAction(s, "pruner") }, "Change the pruner…"),
      h("button", { type: "button", class: "danger", onclick: () => deleteAction(s) }, "Delete the study…"));
  }

  async function enqueueAction(s) {
    const inputs = s.params.map((p) => {
      const id = "enqueue-" + p.name;
      const input = p.kind === "categorical" ?
        h("select", { name: p.name }, h("option", { value: "", text: "(drawn at random)" }),
          p.choices.map((c) => h("option", { value: c, text: c }))) :
        h("input", { name: p.name, inputmode: "decimal",
          placeholder: fmt(p.low) + " … " + fmt(p.high) + (p.log ? " (log)" : "") });
      return h("label", {}, h("span", { text: p.name }), input);
    });
    await act("Enqueue a point", inputs, "Enqueue", (data) => {
      const params = {};
      for (const p of s.params) {
        const raw = data.get(p.name);
        if (raw === "" || raw == null) continue;
        params[p.name] = p.kind === "categorical" ? typedChoice(s, p.name, raw) : Number(raw);
      }
      return api(studyApi("enqueue", name), { method: "POST", body: { params } });
    });
    version = null;
  }

  async function budgetAction(s) {
    const input = h("input", { name: "budget", type: "number", min: 1, value: s.budget || "" });
    await act("Change the budget", [h("label", {}, "Total trials (empty: no limit)", input)],
      "Change", (data) => api(studyApi("budget", name), { method: "POST",
        body: { budget: data.get("budget") ? Number(data.get("budget")) : null } }));
    version = null;
  }

  async function choiceAction(s, kind) {
    const names = (await api("/api/dashboard/samplers"))[kind + "s"];
    const select = h("select", { name: "name" }, names.map((n) =>
      h("option", { value: n, text: n, selected: n === s[kind] })));
    const options = h("textarea", { name: "options", rows: 3, placeholder: '{"gamma": 0.2}' });
    await act("Change the " + kind + " for the next trials",
      [h("label", {}, kind, select), h("label", {}, "options (JSON, optional)", options)], "Change",
      (data) => {
        let opts = {};
        if (data.get("options").trim()) {
          try { opts = JSON.parse(data.get("options")); } catch (e) {
            return Promise.reject(new Error("options: not JSON: " + e.message));
          }
        }
        return api(studyApi(kind, name), { method: "POST",
          body: { name: data.get("name"), options: opts } });
      });
    version = null;
  }

  async function deleteAction(s) {
    const input = h("input", { name: "confirm", autocomplete: "off" });
    const done = await act("Delete the study", [h("p", {},
      "This deletes the study and all its trials. Type its name to confirm: ",
      h("strong", { text: s.name })), h("label", {}, "name", input)], "Delete", (data) => {
      if (data.get("confirm") !== s.name) return Promise.reject(new Error("the name does not match"));
      return api(studyApi("study", name), { method: "DELETE" });
    }, true);
    if (done) location.hash = "#/";
  }

  const poll = poller(tick, POLL_MS);
  return {
    stop() { poll.stop(); window.removeEventListener("resize", onResize); },
    changed() { version = null; }, // an action changed the study: redraw at the next poll
  };
}

// A categorical choice as the space holds it (a number or a boolean stays one).
function typedChoice(s, param, text) {
  for (const spec of s.space) {
    if (spec.name === param && Array.isArray(spec.choices)) {
      const hit = spec.choices.find((c) => String(c) === text);
      if (hit !== undefined) return hit;
    }
  }
  return text;
}

// -- the trial table ---------------------------------------------------------------------

function trialTable(name) {
  const state = { sort: "number", descending: true, limit: 50, offset: 0, states: new Set(),
    param: "", op: "=", value: "" };
  let info = null, total = 0;
  const stateBoxes = STATES.map((s) => h("label", {}, h("input", { type: "checkbox", value: s,
    onchange: (e) => { e.target.checked ? state.states.add(s) : state.states.delete(s);
      state.offset = 0; refresh(); } }), " " + s.toLowerCase()));
  const paramSelect = h("select", { "aria-label": "filter parameter",
    onchange: () => { state.param = paramSelect.value; } });
  const opSelect = h("select", { "aria-label": "comparison" },
    ["=", "!=", "<", "<=", ">", ">="].map((o) => h("option", { value: o, text: o })));
  const valueInput = h("input", { "aria-label": "filter value", placeholder: "value", size: 10 });
  const filterForm = h("form", { class: "toolbar", role: "search", onsubmit: (e) => {
    e.preventDefault();
    state.param = paramSelect.value; state.op = opSelect.value;
    state.value = valueInput.value.trim(); state.offset = 0; refresh();
  } }, h("fieldset", {}, h("legend", { class: "muted", text: "state" }), stateBoxes),
  h("span", { class: "muted", text: "where" }), paramSelect, opSelect, valueInput,
  h("button", { type: "submit" }, "Filter"),
  h("button", { type: "button", onclick: () => { valueInput.value = ""; state.value = "";
    state.offset = 0; refresh(); } }, "Clear"));
  const headRow = h("tr");
  const body = h("tbody");
  const status = h("span", { class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", onclick: () => page(-1) }, "← Previous");
  const next = h("button", { type: "button", onclick: () => page(1) }, "Next →");
  const size = h("select", { "aria-label": "rows per page", onchange: () => {
    state.limit = Number(size.value); state.offset = 0; refresh(); } },
  PAGE_SIZES.map((n) => h("option", { value: n, text: n + " rows", selected: n === 50 })));
  const error = h("p", { class: "error", role: "alert" });
  const el = h("section", { "aria-label": "trials" }, filterForm, error,
    h("div", { class: "toolbar" }, prev, next, size, status),
    h("table", { class: "trials" }, h("thead", {}, headRow), body));

  function page(step) {
    const offset = state.offset + step * state.limit;
    if (offset < 0 || offset >= total) return;
    state.offset = offset;
    refresh();
  }

  function header(label, key, numeric) {
    const active = state.sort === key;
    const th = h("th", { scope: "col", class: numeric ? "num" : null,
      "aria-sort": active ? (state.descending ? "descending" : "ascending") : "none" },
    h("button", { type: "button", "data-sort": key, onclick: () => {
      state.descending = state.sort === key ? !state.descending : false;
      state.sort = key; state.offset = 0; refresh();
    } }, label + (active ? (state.descending ? " ▼" : " ▲") : "")));
    return th;
  }

  function drawHead() {
    headRow.textContent = "";
    headRow.append(header("#", "number", true), h("th", { scope: "col", text: "state" }),
      header("value", "value", true), header("duration", "duration", true),
      ...info.params.map((p) => header(p.name, "param:" + p.name, p.kind === "numeric")),
      h("th", { scope: "col", text: "worker" }), h("th", { scope: "col", text: "note" }));
  }

  // The page of trials the table's state asks for (started early by a view's first tick).
  function ask() {
    const q = new URLSearchParams({ sort: state.sort, descending: state.descending,
      limit: state.limit, offset: state.offset });
    state.states.forEach((st) => q.append("state", st));
    if (state.param && state.value) { q.set("param", state.param); q.set("op", state.op);
      q.set("value", state.value); }
    return api(studyApi("trials", name, q.toString()));
  }

  async function refresh(s, asked) {
    if (s) {
      const fresh = !info || JSON.stringify(info.params) !== JSON.stringify(s.params);
      info = s;
      if (fresh) {
        paramSelect.textContent = "";
        paramSelect.append(h("option", { value: "", text: "(parameter)" }),
          ...s.params.map((p) => h("option", { value: p.name, text: p.name })));
        paramSelect.value = state.param;
      }
    }
    if (!info) return;
    let data;
    try {
      data = await (asked || ask());
      error.textContent = "";
    } catch (err) { error.textContent = err.message; return; }
    total = data.total;
    drawHead();
    body.textContent = "";
    for (const t of data.trials) {
      body.append(h("tr", { class: "clickable", tabindex: 0, "data-number": t.number,
        onclick: () => trialDetail(name, t.number, info),
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault();
          trialDetail(name, t.number, info); } } },
      h("td", { class: "num", text: String(t.number) }),
      h("td", { class: "state-" + t.state, text: t.state }),
      h("td", { class: "num", text: fmt(t.values ? t.values : t.value) }),
      h("td", { class: "num", text: seconds(t.duration) }),
      info.params.map((p) => h("td", { class: p.kind === "numeric" ? "num" : null,
        text: p.name in t.params ? fmt(t.params[p.name]) : "" })),
      h("td", { text: t.worker || "" }), h("td", { text: t.note || "" })));
    }
    if (!data.trials.length) body.append(h("tr", {}, h("td", { colspan: 6 + info.params.length,
      class: "muted", text: "No trial matches." })));
    const first = total ? state.offset + 1 : 0;
    status.textContent = first + "–" + (state.offset + data.trials.length) + " of " + total;
    prev.disabled = state.offset === 0;
    next.disabled = state.offset + state.limit >= total;
  }

  return { el, refresh, ask };
}

async function trialDetail(name, number, info) {
  const t = await api(studyApi("trial", name, "number=" + number));
  const d = $("#dialog");
  const form = $("#dialog-form");
  form.textContent = "";
  const row = (k, v) => [h("dt", { text: k }), h("dd", {}, v)];
  const steps = Object.keys(t.intermediate);
  const curve = h("div", { class: "chart" });
  form.append(h("div", { class: "detail" }, h("h2", { text: "Trial #" + t.number + " · " + t.state }),
    h("dl", {}, row("value", fmt(t.values || t.value)),
      Object.entries(t.params).map(([k, v]) => row(k, fmt(v))),
      row("worker", t.worker || "–"),
      row("started", t.started_at ? new Date(t.started_at * 1000).toISOString() : "–"),
      row("duration", seconds(t.duration)),
      Object.entries(t.user_attrs).map(([k, v]) => row("attr " + k, fmt(v)))),
    steps.length ? [h("h3", { text: "Intermediate values (" + steps.length + " steps)" }), curve] : null,
    t.error ? [h("h3", { text: "Error" }), h("pre", { text: t.error })] : null),
  h("div", { class: "buttons" },
    access === "write" ? h("button", { type: "button", onclick: () => noteAction(name, t) },
      "Add a note…") : null,
    h("button", { type: "submit", value: "close" }, "Close")));
  d.showModal();
  if (steps.length) {
    Charts.steps(curve, steps.map(Number), steps.map((s) => t.intermediate[s]), "value");
  }
  form.querySelector("button[value=close]").focus();
}

async function noteAction(name, t) {
  const text = h("textarea", { name: "note", rows: 3, maxlength: 10000 });
  text.value = t.user_attrs.note || "";
  await act("Note on trial #" + t.number, [h("label", {}, "note", text)], "Save",
    (data) => api(studyApi("note", name, "number=" + t.number), { method: "POST",
      body: { note: data.get("note") } }));
  if (view.changed) view.changed();
}
