// The hpo dashboard: one page, three views (#/ studies, #/study/NAME, #/compare/NAME),
// reading the server's JSON API with the bearer token kept in this tab's sessionStorage.
// Text from the database is only ever set with textContent (the `h` helper below): no
// innerHTML anywhere, so a study or parameter name cannot become markup.
"use strict";

const TOKEN_KEY = "hpo-token";
const POLL_MS = 1000;
const IMPORTANCE_MS = 10000;
const PAGE_SIZES = [25, 50, 100, 200];
const STATES = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"];

let view = { stop() {} }; // the view on screen: stop() ends its polling
let access = "none";
let accessKnown = Promise.resolve("none");

// -- DOM ---------------------------------------------------------------------------------

// h("td", {class: "num", onclick: f}, "text", child): children are nodes or text.
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const $ = (sel) => document.querySelector(sel);

function fmt(v) {
  if (v == null) return "–";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(+v.toPrecision(6));
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}

function ago(epoch) {
  if (epoch == null) return "–";
  const s = Date.now() / 1000 - epoch;
  if (s < 60) return Math.max(0, Math.round(s)) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(epoch * 1000).toISOString().slice(0, 16).replace("T", " ");
}

function seconds(s) {
  if (s == null) return "–";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  return (s / 60).toFixed(1) + " min";
}

// -- the API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, options) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const init = Object.assign({ headers, cache: "no-store" }, options || {});
  if (init.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    if (response.status === 401) askToken("This server needs a token: " + data.detail);
    throw new ApiError(response.status, data.detail || response.statusText);
  }
  return data;
}

const enc = encodeURIComponent;
// Study names may hold any character, "/" included: they go as a query parameter.
const studyApi = (what, name, more) => "/api/dashboard/" + what + "?name=" + enc(name) +
  (more ? "&" + more : "");

// -- the token ---------------------------------------------------------------------------

function takeTokenFromFragment() {
  // `hpo dashboard` opens #token=...: keep it for this tab, then drop it from the URL
  // (and so from the history) at once.
  const m = location.hash.match(/^#token=([^&]*)(?:&(.*))?$/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + "#" + (m[2] || "/"));
}

function askToken(message) {
  const form = $("#token-form");
  form.hidden = false;
  $("#token-error").textContent = message || "";
  $("#token").focus();
}

function setupToken() {
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#token").value = "";
    $("#token-form").hidden = true;
    start();
  });
  $("#forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
}

async function start() {
  // what the token may do, asked for beside the view's first requests (not before them)
  accessKnown = api("/api/dashboard/access").then((a) => a.access);
  route();
  try {
    access = await accessKnown;
  } catch (err) {
    if (err.status !== 401) showError($("#view"), err);
    return;
  }
  $("#access").textContent = access === "write" ? "read-write" : "read-only";
  $("#forget").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

// -- dialogs (no window.confirm: a real dialog, keyboard-usable) ------------------------

// An action: a dialog with its fields and a confirming button; `send` runs on confirm and
// the dialog stays open with the server's message if it is refused. Resolves true when
// done, false when cancelled (Cancel or Escape).
async function act(title, fields, okLabel, send, danger) {
  const d = $("#dialog");
  if (d.open) { // (its close event comes later: wait for it, or it would end this one)
    await new Promise((closed) => { d.addEventListener("close", closed, { once: true }); d.close(); });
  }
  const form = $("#dialog-form");
  form.textContent = "";
  const error = h("p", { class: "error", role: "alert" });
  const ok = h("button", { type: "submit", class: danger ? "danger" : null }, okLabel);
  form.append(h("h2", { text: title }), ...fields, error, h("div", { class: "buttons" },
    h("button", { type: "button", onclick: () => d.close() }, "Cancel"), ok));
  return new Promise((resolve) => {
    let done = false;
    form.onsubmit = async (event) => {
      event.preventDefault();
      ok.disabled = true;
      try {
        await send(new FormData(form));
        done = true;
        say(title + ": done");
        d.close();
      } catch (err) {
        error.textContent = err.message;
      } finally {
        ok.disabled = false;
      }
    };
    d.onclose = () => { form.onsubmit = null; d.onclose = null; resolve(done); };
    d.showModal();
    (form.querySelector("input, select, textarea") || ok).focus();
  });
}

function say(text) { $("#live").textContent = text; }

function showError(el, err) {
  el.textContent = "";
  el.append(h("p", { class: "error", role: "alert", text: err.message || String(err) }));
}

// -- routing -----------------------------------------------------------------------------

function route() {
  view.stop();
  const hash = location.hash.replace(/^#/, "") || "/";
  const main = $("#view");
  main.textContent = "";
  let m;
  if ((m = hash.match(/^\/study\/(.+)$/))) view = studyView(main, decodeURIComponent(m[1]));
  else if ((m = hash.match(/^\/compare\/(.+)$/))) view = compareView(main, decodeURIComponent(m[1]));
  else view = studiesView(main);
}

// Poll `tick` every `ms` while the view is on screen (never two at once).
function poller(tick, ms) {
  let timer = null, stopped = false;
  const run = async () => {
    try { await tick(); } catch (err) {
      say(err.message);
      if (err.status === 401 || err.status === 404) { // asking again would not help
        stopped = true;
        if (err.status === 404) showError($("#view"), err);
      }
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return { stop() { stopped = true; clearTimeout(timer); } };
}

// -- the studies list --------------------------------------------------------------------

function studiesView(main) {
  const search = h("input", { type: "search", class: "search", placeholder: "Search studies",
    "aria-label": "Search studies", oninput: () => draw() });
  const body = h("tbody");
  const table = h("table", { "aria-label": "studies" },
    h("thead", {}, h("tr", {}, ["Study", "Direction", "Sampler", "Pruner", "Trials",
      "Budget", "Best", "Last activity"].map((c) => h("th", { scope: "col", text: c })))), body);
  main.append(h("h1", { text: "Studies" }), h("div", { class: "toolbar" }, search), table);
  let rows = [];

  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = rows.filter((s) => !q || s.name.toLowerCase().includes(q) ||
      (s.comparison || "").toLowerCase().includes(q) || s.sampler.includes(q));
    const groups = new Map();
    for (const s of shown) {
      const key = s.comparison || "";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(s);
    }
    body.textContent = "";
    for (const [group, members] of [...groups].sort((a, b) => (a[0] ? 1 : 0) - (b[0] ? 1 : 0))) {
      if (group) {
        body.append(h("tr", { class: "group" }, h("th", { colspan: 8, scope: "rowgroup" },
          "Comparison ", h("a", { href: "#/compare/" + enc(group), text: group }),
          h("span", { class: "muted", text: " · " + members.length + " studies" }))));
      }
      for (const s of members) body.append(studyRow(s));
    }
    if (!shown.length) body.append(h("tr", {}, h("td", { colspan: 8, class: "muted",
      text: rows.length ? "No study matches." : "No study in this storage yet." })));
  }

  function studyRow(s) {
    const c = s.counts;
    const finished = (c.COMPLETE || 0) + (c.PRUNED || 0) + (c.FAIL || 0);
    const states = STATES.filter((k) => c[k]).map((k) =>
      h("span", { class: "state-" + k, title: k, text: c[k] + " " + k.toLowerCase() + " " }));
    const budget = s.budget ? h("span", {}, h("progress", { max: s.budget, value: finished,
      "aria-label": "budget" }), " " + finished + "/" + s.budget) : "no limit";
    return h("tr", {},
      h("td", {}, h("a", { href: "#/study/" + enc(s.name), text: s.name })),
      h("td", { text: s.directions.join(", ") }), h("td", { text: s.sampler }),
      h("td", { text: s.pruner }), h("td", {}, states.length ? states : "0"),
      h("td", {}, budget), h("td", { class: "num", text: fmt(s.best_value) }),
      h("td", { text: ago(s.last_activity) }));
  }

  return poller(async () => {
    rows = (await api("/api/dashboard/studies")).studies;
    draw();
  }, 2000);
}

// -- a comparison ------------------------------------------------------------------------

function compareView(main, name) {
  const box = h("div");
  main.append(h("p", {}, h("a", { href: "#/", text: "← Studies" })), box);
  return poller(async () => {
    const c = await api(studyApi("comparison", name));
    box.textContent = "";
    box.append(h("h1", { text: "Comparison " + c.name }),
      h("p", { class: "muted", text: c.trials + " trials per study; best value so far as " +
        "mean ± standard error over seeds." }));
    for (const o of c.objectives) {
      const chart = h("div", { class: "chart", "data-chart": "spread" });
      const verdict = o.headers.indexOf("vs best");
      box.append(h("h2", { text: o.heading }),
        h("table", { "aria-label": o.name }, h("thead", {}, h("tr", {},
          o.headers.map((c) => h("th", { scope: "col", text: c })))),
        h("tbody", {}, o.rows.map((r) => h("tr", {}, r.map((cell, i) => h("td", {
          class: i === verdict && (cell === "best" || cell === "n.s.") ? "sig" : null,
          text: cell })))))),
        h("figure", {}, h("figcaption", { text: "Best so far per sampler: median and " +
          "quartiles over seeds" }), chart), askTimes(o.ask_ms));
      Charts.spread(chart, o.curves, o.direction);
    }
    if (Object.keys(c.mean_rank).length && c.objectives.length > 1) {
      box.append(h("p", { text: "Mean rank across objectives: " + Object.entries(c.mean_rank)
        .map(([k, v]) => k + " " + v.toFixed(2)).join(", ") }));
    }
    box.append(h("p", { class: "muted", text: c.note }), h("h2", { text: "Studies" }),
      h("ul", {}, c.studies.map((s) => h("li", {}, h("a", { href: "#/study/" + enc(s), text: s })))));
  }, 5000);
}

// Median time per ask of each sampler, as bars (a log scale would hide little here:
// the bars are labelled with their value).
function askTimes(asks) {
  const entries = Object.entries(asks).filter(([, v]) => v != null);
  if (!entries.length) return null;
  const top = Math.max(...entries.map(([, v]) => v));
  const bars = entries.map(([label, ms]) => {
    const bar = h("div", { class: "bar", "aria-hidden": "true" });
    bar.style.width = Math.max(0.5, (100 * ms) / top) + "%";
    return [h("span", { text: label }), bar, h("span", { class: "num", text: (+ms.toPrecision(2)) + " ms" })];
  });
  return h("figure", { "aria-label": "ask times" }, h("figcaption", { text: "Median time per ask" }),
    h("div", { class: "bars" }, bars));
}

// -- start -------------------------------------------------------------------------------

window.addEventListener("hashchange", () => { takeTokenFromFragment(); route(); });
takeTokenFromFragment();
setupToken();
start();
