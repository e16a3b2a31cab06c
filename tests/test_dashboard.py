"""The dashboard: its data shaping (hpo.dashboard_data), and the page in a real browser.

The browser tests drive headless Chromium (Debian's `chromium`, through
Playwright, as tests/test_reports.py does) against a real `hpo serve`
subprocess on a free port with a read-write and a read-only token. Every
page must load with no console error, no dialog (the XSS payloads in names,
choices, attributes and errors would open one if they ran) and no request
beyond the server's origin. Where Chromium is missing they skip, unless
HPO_TEST_REQUIRE_BROWSER=1, where they fail.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hpo
from hpo import dashboard_data as shape
from hpo.direction import Direction
from hpo.records import FrozenTrial, TrialState
from tests.test_reports import _chromium

HPO = str(Path(sys.executable).parent / "hpo")
WRITE = "dash-write-token-0123456789"
READ = "dash-read-token-0123456789"
XSS = "<img src=x onerror=alert('name')>"
XSS_PARAM = "<svg onload=alert('param')>"
XSS_CHOICE = "<script>alert('choice')</script>"
XSS_ATTR = "<img src=x onerror=alert('attr')>"
XSS_ERROR = "Traceback\nValueError: <img src=x onerror=alert('error')>"
N_BIG = 10_000


# -- data shaping ---------------------------------------------------------------------


def _trials(values: list[float | None], states: list[TrialState] | None = None) -> list:
    states = states or [TrialState.COMPLETE] * len(values)
    return [
        FrozenTrial(i, i, s, {"x": float(i)}, value=v, started_at=float(i), finished_at=i + 0.5)
        for i, (v, s) in enumerate(zip(values, states, strict=True))
    ]


def test_history_keeps_every_low_and_high_and_the_exact_best_so_far():
    rng = np.random.default_rng(0)
    values = rng.normal(size=20_000).tolist()
    trials = _trials(values)
    done = shape.Completed(trials)
    drawn = shape.history(done, Direction.MINIMIZE, trials[-1].number, points=400)
    assert drawn["total"] == 20_000 and drawn["shown"] <= 400
    assert min(drawn["y"]) == min(values) and max(drawn["y"]) == max(values)
    best = np.minimum.accumulate(values)
    for x, y in zip(drawn["best_x"], drawn["best_y"], strict=True):
        assert best[x] == y
    assert len(set(best)) == len(drawn["best_x"])  # one point per improvement
    assert drawn["x"] == sorted(drawn["x"])


def test_history_skips_what_has_no_finite_value():
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE, TrialState.FAIL]
    trials = _trials([1.0, None, math.inf, None], states) + _trials([0.5])[0:0]
    drawn = shape.history(shape.Completed(trials), Direction.MAXIMIZE, 3)
    assert drawn["x"] == [0] and drawn["best_y"] == [1.0]


def test_the_sample_holds_the_best_trials():
    values = list(np.random.default_rng(1).uniform(size=5000))
    done = shape.Completed(_trials(values))
    chosen = shape.sample(done, Direction.MAXIMIZE, size=500)
    assert len(chosen) <= 500
    best = sorted(range(5000), key=lambda i: -values[i])[:100]
    assert set(best) <= set(chosen.tolist())


def _done(number: int, values: list[float], feasible: bool = True) -> FrozenTrial:
    return FrozenTrial(trial_id=number, number=number, state=TrialState.COMPLETE, params={},
                       objective_values=values, constraints=[0.0 if feasible else 1.0])  # fmt: skip


def test_the_front_chart_draws_the_whole_front_and_marks_each_trial():
    """Two objectives, both minimized: the front of the feasible trials in full, an
    infeasible trial that would dominate it kept off, the rest thinned past the limit."""
    xs = np.random.default_rng(2).uniform(size=3000)
    trials = [
        _done(n, [x, 1 - x] if n % 300 == 0 else [x + 0.5, 1.5 - x])  # 10 on the front
        for n, x in enumerate(xs.tolist())
    ]
    trials.append(_done(3000, [-1.0, -1.0], feasible=False))
    trials.append(FrozenTrial(trial_id=3001, number=3001, state=TrialState.FAIL, params={}))
    drawn = shape.front(trials, [Direction.MINIMIZE, Direction.MINIMIZE], points=500)
    assert drawn["total"] == 3001 and drawn["front_size"] == 10 and drawn["shown"] == 500
    on_front = {n for n, k in zip(drawn["number"], drawn["kind"], strict=True) if k == "front"}
    assert on_front == set(range(0, 3000, 300))
    kinds = dict(zip(drawn["number"], drawn["kind"], strict=True))
    assert kinds.get(3000, "infeasible") == "infeasible"
    assert len(drawn["values"]) == 2 and len(drawn["values"][0]) == 500
    pair = [_done(0, [1.0, 1.0]), _done(1, [2.0, 2.0])]
    assert shape.front(pair, [Direction.MINIMIZE] * 2)["kind"] == ["front", "feasible"]
    assert shape.front(pair, [Direction.MAXIMIZE] * 2)["kind"] == ["feasible", "front"]


def test_distribution_is_bounded_and_ends_at_one():
    done = shape.Completed(_trials(list(np.arange(1000.0))))
    d = shape.distribution(done, quantiles=50)
    assert len(d["x"]) == 50 and d["y"][-1] == 1.0 and d["x"][0] == 0.0


def test_page_in_memory_sorts_and_filters_by_a_parameter():
    trials = _trials([3.0, None, 1.0, 2.0], [TrialState.COMPLETE, TrialState.FAIL] + [
        TrialState.COMPLETE] * 2)  # fmt: skip
    rows, total = shape.page(trials, Direction.MINIMIZE, [], "value", False, 10, 0)
    assert [t.number for t in rows] == [2, 3, 0, 1] and total == 4  # no value: last
    rows, _ = shape.page(trials, Direction.MAXIMIZE, [], "value", False, 10, 0)
    assert [t.number for t in rows] == [0, 3, 2, 1]
    rows, _ = shape.page(trials, Direction.MINIMIZE, [], "param:x", True, 2, 1)
    assert [t.number for t in rows] == [2, 1]
    from hpo.space import Space

    x = Space.from_spec([{"name": "x", "type": "float", "low": 0, "high": 9}]).params[0]
    assert [t.number for t in shape.filtered(trials, x, ">=", "2")] == [2, 3]


# -- a real server and a real browser -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(base: str, method: str, path: str, body: Any = None, token: str = WRITE) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _fill(url: str) -> None:
    """The studies the browser tests look at."""
    space = [
        {"name": "x", "type": "float", "low": -5.0, "high": 5.0},
        {"name": "act", "type": "categorical", "choices": ["relu", "tanh"]},
    ]
    big = hpo.create_study("big", url, space=space, sampler="random", budget=N_BIG + 50)
    rng = random.Random(0)
    trials = []
    for i in range(N_BIG):
        x, act = rng.uniform(-5, 5), rng.choice(["relu", "tanh"])
        state = TrialState.PRUNED if i % 10 == 3 else TrialState.COMPLETE
        value = (x - 1) ** 2 + (act == "tanh") if state == TrialState.COMPLETE else None
        steps = {s: (x - 1) ** 2 + 3 / (s + 1) for s in range(4)} if i % 50 == 0 else {}
        trials.append(
            FrozenTrial(-1, -1, state, {"x": x, "act": act}, value=value, intermediate=steps,
                        started_at=1e9 + i, finished_at=1e9 + i + 1.5, worker=f"w{i % 3}")
        )  # fmt: skip
    big.add_trials(trials)
    nasty_space = [
        {"name": XSS_PARAM, "type": "float", "low": 0.0, "high": 1.0},
        {"name": "pick", "type": "categorical", "choices": [XSS_CHOICE, "plain"]},
    ]
    nasty = hpo.create_study(XSS, url, space=nasty_space, sampler="random", seed=0)
    nasty.enqueue({"pick": XSS_CHOICE})  # (so that a trial has the payload as its choice)
    for i in range(6):
        trial = nasty.ask()
        trial.set_user_attr(XSS_ATTR, XSS_ATTR)
        if i == 5:
            nasty.tell(trial, state="fail", error=XSS_ERROR)
        else:
            nasty.tell(trial, 0.1 * i)
    hpo.create_study("live", url, space=space, sampler="random")
    hpo.create_study("doomed", url, space=space, sampler="random")
    for sampler in ("random", "sobol"):
        for seed in range(2):
            attrs = {"comparison": "cmp", "objective": "quad", "sampler": sampler,
                     "seed_index": seed}  # fmt: skip
            member = hpo.create_study(
                f"cmp/quad/{sampler}/seed-{seed}", url, space=space[:1], sampler=sampler,
                seed=seed, budget=8, user_attrs=attrs,
            )  # fmt: skip
            member.optimize(lambda t: t.params["x"] ** 2, n_trials=8)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("dashboard")
    storage = str(work / "dash.db")
    _fill(storage)
    tokens = work / "tokens.txt"
    tokens.write_text(f"write {WRITE}\nread {READ}\n")
    port = _free_port()
    log = work / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [HPO, "serve", "--port", str(port), "--storage", storage, "--token-file", str(tokens)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _request(base, "GET", "/api/dashboard/access")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        text = log.read_text()
        assert WRITE not in text and READ not in text  # tokens never reach the log


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page whose console errors, page errors, dialogs and requests elsewhere are kept."""

    def __init__(self, browser: Any, base: str, token: str, refusals: bool) -> None:
        self.base = base
        self.refusals = refusals  # the test makes the server refuse: 422s are expected
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("dialog", self._dialog)
        self.page.on("request", self._request)
        self.token = token

    def _console(self, message: Any) -> None:
        if self.refusals and "status of 422" in message.text:
            return
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _request(self, request: Any) -> None:
        if not (request.url.startswith(self.base + "/") or request.url.startswith("data:")):
            self.problems.append(f"request elsewhere: {request.url}")

    def open(self, route: str) -> Any:
        self.page.goto(f"{self.base}/#token={self.token}&{route}")
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser, server) -> Iterator[Any]:
    opened: list[Watched] = []

    def make(token: str = WRITE, refusals: bool = False) -> Watched:
        opened.append(Watched(browser, server, token, refusals))
        return opened[-1]

    yield make
    for page in opened:
        page.close()
    problems = [p for page in opened for p in page.problems]
    assert problems == []


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect  # (installed with Chromium)

    return playwright_expect(locator)


def _study_route(name: str) -> str:
    from urllib.parse import quote

    return "/study/" + quote(name, safe="")


def _wait_rendered(page: Any) -> None:
    page.wait_for_selector("[data-chart=history][data-points]")
    page.wait_for_selector("table.trials tbody tr[data-number]")


def test_every_page_loads_cleanly(watched):
    w = watched()
    page = w.open("/")
    page.wait_for_selector("text=big")
    assert page.locator("tr.group", has_text="cmp").count() == 1  # the comparison grouped
    page.fill("input[type=search]", "liv")
    expect(page.locator("main tbody tr")).to_have_count(1)
    page = w.open(_study_route("big"))
    _wait_rendered(page)
    page.wait_for_selector("[data-chart=importance] .bar")
    assert page.locator("[data-chart=slices] figure").count() == 2
    assert page.locator("[data-chart=history]").get_attribute("data-last") == str(N_BIG - 1)
    page.locator("table.trials tbody tr").first.press("Enter")  # keyboard: the detail
    page.wait_for_selector("dialog[open] .detail")
    page.keyboard.press("Escape")
    page = w.open("/compare/cmp")
    page.wait_for_selector("[data-chart=spread] canvas")
    assert page.locator("main table[aria-label=quad] tbody tr").count() == 2
    headers = page.locator("main table[aria-label=quad] thead th").all_inner_texts()
    assert "mean rank" in headers and "vs best" in headers
    response = page.request.get(w.base + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.request.get(w.base + "/dashboard/app.js").headers["x-content-type-options"]
    assert page.request.get(w.base + "/dashboard/index.html").status == 404  # listed files only
    assert page.request.get(w.base + "/api/dashboard/studies").status == 401  # no token


def test_the_api_docs_render_offline(watched):
    """/docs is Swagger UI from the package: it renders the API's operations, and asks
    nothing of any other origin (FastAPI's default page loads it from a CDN)."""
    w = watched()
    page = w.page
    page.goto(w.base + "/docs")
    page.wait_for_selector(".opblock-summary-path")  # an operation, rendered
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/studies/{name}/ask" in path for path in paths), paths


def test_a_study_of_several_objectives_heads_with_its_front_not_a_best_value(server):
    """The headline of a study of two objectives: its Pareto front's size (feasible
    trials only), never one objective's lowest value (that trial may be infeasible)."""
    study = hpo.connect(server, token=WRITE).create_study(
        "two-goals",
        [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
        directions=["minimize", "minimize"],
        sampler="random",
    )
    for x, feasible in ((0.1, False), (0.4, True), (0.6, True)):
        trial = study.ask()
        study.tell(trial, values=[x, 1 - x], constraints=[0.0 if feasible else 1.0])
    status, answer = _request(server, "GET", "/api/dashboard/study?name=two-goals")
    assert status == 200
    assert answer["front_size"] == 2 and answer["best_value"] is None


def test_a_study_of_several_objectives_draws_its_pareto_front(watched, server):
    study = hpo.connect(server, token=WRITE).create_study(
        "front-page",
        [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
        directions=["minimize", "maximize"],
        objective_names=["error", "speed"],
        sampler="random",
    )
    for x, speed, feasible in ((0.2, 0.2, True), (0.5, 0.5, True), (0.3, 0.9, False),
                               (0.9, 0.1, True)):  # fmt: skip
        study.tell(study.ask(), values=[x, speed], constraints=[0.0 if feasible else 1.0])
    page = watched().open(_study_route("front-page"))
    page.wait_for_selector("[data-chart=front][data-front] canvas")
    assert page.locator("[data-chart=front]").get_attribute("data-front") == "2"  # 0.2, 0.5
    figure = page.locator("figure[aria-label='Pareto front']")
    expect(figure).to_be_visible()
    expect(figure.locator("figcaption")).to_contain_text("2 on the front of 4 completed")
    expect(figure.locator("select").first).to_be_hidden()  # two objectives: nothing to pick
    assert "error (minimize)" in page.locator("[data-chart=front]").inner_text()  # the legend
    page = watched().open(_study_route("big"))  # one objective: no front chart
    _wait_rendered(page)
    expect(page.locator("figure[aria-label='Pareto front']")).to_be_hidden()


def test_a_told_trial_appears_in_the_table_and_the_history(watched, server):
    w = watched(READ)
    page = w.open(_study_route("live"))
    page.wait_for_selector("[data-chart=history]")
    for value in (3.0, 2.0):
        status, asked = _request(server, "POST", "/api/studies/live/ask", {})
        assert status == 200
        number = asked["number"]
        status, _ = _request(server, "POST", f"/api/studies/live/trials/{number}/tell",
                             {"value": value})  # fmt: skip
        assert status == 200
        # polled every second: within about 2 s (slack for a loaded machine)
        page.wait_for_selector(f"table.trials tbody tr[data-number='{number}']", timeout=5000)
        page.wait_for_selector(f"[data-chart=history][data-last='{number}']", timeout=5000)


def _column(page: Any, index: int) -> list[str]:
    return page.locator(f"table.trials tbody tr td:nth-child({index})").all_inner_texts()


def test_sorting_and_filtering_ten_thousand_trials(watched, server):
    page = watched().open(_study_route("big"))
    _wait_rendered(page)
    status = page.locator("table.trials").locator("xpath=..").locator("span.muted").last
    page.click("button[data-sort=value]")  # best first
    page.wait_for_selector("th[aria-sort=ascending] button[data-sort=value]")
    _, best = _request(server, "GET", "/api/dashboard/trials?name=big&sort=value&limit=3")
    page.wait_for_selector(f"table.trials tbody tr[data-number='{best['trials'][0]['number']}']")
    first = [float(v) for v in _column(page, 3)[:3]]
    assert first == sorted(first)
    page.check("input[type=checkbox][value=PRUNED]")
    expect(status).to_have_text(re.compile(f"of {N_BIG // 10}$"))
    others = page.locator("table.trials tbody td:nth-child(2):not(:text-is('PRUNED'))")
    expect(others).to_have_count(0)
    page.uncheck("input[type=checkbox][value=PRUNED]")
    page.select_option("select[aria-label='filter parameter']", "x")
    page.select_option("select[aria-label=comparison]", "<")
    page.fill("input[aria-label='filter value']", "-4")
    page.click("button:text('Filter')")
    page.click("button[data-sort='param:x']")
    page.wait_for_selector("th[aria-sort=ascending] button[data-sort='param:x']")
    _, want = _request(server, "GET", "/api/dashboard/trials?name=big&param=x&op=<&value=-4")
    expect(status).to_have_text(re.compile(f"of {want['total']}$"))
    xs = [float(v) for v in _column(page, 5)]
    assert xs and all(x < -4 for x in xs) and xs == sorted(xs)
    page.click("button:text('Next →')")
    expect(status).to_have_text(re.compile("^51–"))


def test_actions_need_a_read_write_token(watched, server):
    reader = watched(READ).open(_study_route("live"))
    reader.wait_for_selector("[data-chart=history]")
    assert reader.locator("button", has_text="Change the budget").count() == 0
    for path, body in [
        ("/api/dashboard/budget?name=live", {"budget": 5}),
        ("/api/dashboard/sampler?name=live", {"name": "tpe"}),
        ("/api/dashboard/note?name=big&number=1", {"note": "x"}),
        ("/api/dashboard/enqueue?name=live", {"params": {"x": 1.0}}),
    ]:
        assert _request(server, "POST", path, body, token=READ)[0] == 403
    assert _request(server, "DELETE", "/api/dashboard/study?name=doomed", token=READ)[0] == 403

    page = watched(WRITE, refusals=True).open(_study_route("live"))
    page.wait_for_selector("[data-chart=history]")
    page.click("button:text('Change the budget…')")
    page.fill("dialog input[name=budget]", "77")
    page.click("dialog button:text('Change')")
    page.wait_for_selector("dd:has-text('/77')")
    page.click("button:text('Enqueue a point…')")
    page.fill("dialog input[name=x]", "99")  # outside the space: refused, the dialog says why
    page.click("dialog button:text('Enqueue')")
    page.wait_for_selector("dialog[open] .error:has-text('x')")
    page.fill("dialog input[name=x]", "0.5")
    page.click("dialog button:text('Enqueue')")
    page.wait_for_selector("table.trials td:text('WAITING')")
    page.click("button:text('Change the sampler…')")
    page.select_option("dialog select[name=name]", "tpe")
    page.click("dialog button:text('Change')")
    page.wait_for_selector("dd:text('tpe')")
    page.click("table.trials tbody tr[data-number] >> nth=0")
    page.click("dialog button:text('Add a note…')")
    page.fill("dialog textarea[name=note]", "looks good")
    page.click("dialog button:text('Save')")
    page.wait_for_selector("table.trials td:text('looks good')")
    page = watched(WRITE).open(_study_route("doomed"))
    page.click("button:text('Delete the study…')")
    page.fill("dialog input[name=confirm]", "doomed")
    page.click("dialog button:text('Delete')")
    page.wait_for_selector("h1:text('Studies')")
    assert _request(server, "GET", "/api/dashboard/study?name=doomed")[0] == 404


def test_payloads_in_the_data_stay_text(watched):
    w = watched()
    page = w.open("/")
    page.wait_for_selector("main a:text('big')")
    assert page.locator("main tbody a", has_text="onerror").inner_text() == XSS
    page = w.open(_study_route(XSS))
    _wait_rendered(page)
    assert page.locator("h1").inner_text() == XSS
    assert XSS_PARAM in page.locator("table.trials thead").inner_text()
    page.click("table.trials tbody tr[data-number='5']")
    page.wait_for_selector("dialog[open] pre")
    detail = page.locator("dialog .detail").inner_text()
    assert XSS_ATTR in detail and "ValueError: <img" in detail
    page.keyboard.press("Escape")
    page.click("button[data-sort='param:pick']")
    expect(page.locator("table.trials td", has_text=XSS_CHOICE).first).to_be_visible()
    assert page.locator("img, svg, script:not([src])").count() == 0


def test_hpo_dashboard_hands_over_a_fresh_token(tmp_path):
    url_file = tmp_path / "url.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    args = [HPO, "dashboard", "--storage", str(tmp_path / "d.db"), "--no-browser"]
    refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--url-file" in refused.stderr  # no terminal, no file
    process = subprocess.Popen([*args, "--url-file", str(url_file)], env=env,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (url_file.exists() and url_file.read_text().endswith("\n")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        link = url_file.read_text().strip()
        assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
        base, token = link.split("#token=")
        assert base.startswith("http://127.0.0.1:") and len(token) >= 32
        while True:
            try:
                status, body = _request(base.rstrip("/"), "GET", "/api/dashboard/access", None,
                                        token)  # fmt: skip
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert (status, body) == (200, {"access": "write"})
        assert _request(base.rstrip("/"), "GET", "/api/dashboard/studies", None, "x" * 20)[0] == 401
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert token not in err
