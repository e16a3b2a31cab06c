"""Time to a complete render of the dashboard's study page, and what the server sends.

For each size N (1,000 / 10,000 / 100,000 trials by default), a study of N
finished trials (three parameters, a tenth pruned, every 20th with
intermediate values, four workers) is written to a fresh SQLite file with
`add_trials`; a real `hpo serve` subprocess serves it, and headless Chromium
(Debian's chromium, through Playwright) opens the study page in a new
browser context each time. "Complete render": the history chart drawn, the
importance bars, every slice plot, and the first page of the trial table.

- cold: the first opening after the server started, which includes the
  server loading the study into memory (once per server process);
- warm: the median of the next --runs openings, as the page tells it
  (performance.now() when its first update is drawn: from navigation start
  to the last chart and the table drawn); seen: the same openings timed from
  here, which adds the driver's round trips (several per selector waited
  for, slow on a loaded machine);
- bytes: each response the page needs (uncompressed JSON), against the
  reference of every trial as JSON (what a page that pulled the whole study
  would receive), with their ratio.

Targets (issue 20): warm render <= 1 s at 10,000 trials and <= 3 s at
100,000; the browser never receives all trials. Exit status 1 when one is
missed.

    python bench/dashboard.py                       # 1000,10000,100000, 3 warm runs
    python bench/dashboard.py --sizes 1000,10000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import hpo
from hpo.records import FrozenTrial, TrialState

HPO = str(Path(sys.executable).parent / "hpo")
TOKEN = "bench-dashboard-token-0123456789"
TARGETS = {10_000: 1.0, 100_000: 3.0}
RENDERED = (
    "[data-chart=history][data-points]",
    "[data-chart=importance] .bar",
    "[data-chart=slices] figure canvas",
    "table.trials tbody tr[data-number]",
)
ENDPOINTS = ("study", "charts", "importance", "trials")


def make_study(url: str, n: int) -> None:
    space = [
        {"name": "x", "type": "float", "low": -5.0, "high": 5.0},
        {"name": "lr", "type": "float", "low": 1e-5, "high": 1.0, "log": True},
        {"name": "act", "type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    ]
    study = hpo.create_study("bench", url, space=space, sampler="random")
    rng = random.Random(0)
    start = time.time() - 2 * n
    trials = []
    for i in range(n):
        x, lr, act = rng.uniform(-5, 5), 10 ** rng.uniform(-5, 0), rng.choice(["relu", "tanh"])
        value = (x - 1) ** 2 + abs(math.log10(lr) + 3) + (act == "tanh")
        state = TrialState.PRUNED if i % 10 == 3 else TrialState.COMPLETE
        steps = {s: value + 4 / (s + 1) for s in range(10)} if i % 20 == 0 else {}
        trials.append(
            FrozenTrial(
                -1, -1, state, {"x": x, "lr": lr, "act": act},
                value=value if state == TrialState.COMPLETE else None, intermediate=steps,
                started_at=start + 2 * i, finished_at=start + 2 * i + rng.uniform(1, 8),
                worker=f"host:{i % 4}",
            )
        )  # fmt: skip
    for chunk in range(0, n, 20_000):
        study.add_trials(trials[chunk : chunk + 20_000])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(base: str, path: str) -> bytes:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return bytes(response.read())


def serve(storage: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    tokens = work / "tokens.txt"
    tokens.write_text(f"write {TOKEN}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    process = subprocess.Popen(
        [HPO, "serve", "--port", str(port), "--storage", storage, "--token-file", str(tokens),
         "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            get(base, "/api/dashboard/access")
            return process, base
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("hpo serve did not start") from None
            time.sleep(0.1)


def render(browser: object, base: str) -> tuple[float, float]:
    """Seconds from navigation to the complete render of the study page: as the page
    itself tells (performance.now() when its first update was drawn, body[data-rendered]),
    and as seen from here (the driver's round trips included)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    began = time.perf_counter()
    page.goto(f"{base}/#token={TOKEN}&/study/bench")
    for selector in RENDERED:
        page.wait_for_selector(selector)
    page.wait_for_selector("body[data-rendered]")
    seen = time.perf_counter() - began
    in_page = int(page.get_attribute("body", "data-rendered") or 0) / 1000
    context.close()
    if errors:
        raise RuntimeError(f"the page failed: {errors}")
    return in_page, seen


def sizes(base: str, storage: str) -> dict[str, int]:
    out = {}
    for what in ENDPOINTS:
        query = "&limit=50&descending=true" if what == "trials" else ""
        out[what] = len(get(base, f"/api/dashboard/{what}?name=bench{query}"))
    study = hpo.load_study("bench", storage)
    out["reference: every trial"] = len(json.dumps([t.to_dict() for t in study.trials]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3, help="warm renders per size")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, chromium {chromium}")
    print(f"{'trials':>8} {'cold s':>7} {'warm s':>7} {'seen s':>7} {'warm runs':>16} "
          f"{'page bytes':>11} {'all trials':>11} {'ratio':>6}")  # fmt: skip
    missed = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium,
                                         args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        for n in [int(s) for s in args.sizes.split(",")]:
            work = Path(tmp) / str(n)
            work.mkdir()
            storage = str(work / "bench.db")
            make_study(storage, n)
            process, base = serve(storage, work)
            try:
                cold = render(browser, base)
                warm = [render(browser, base) for _ in range(args.runs)]
                sent = sizes(base, storage)
            finally:
                process.terminate()
                process.wait(timeout=30)
            page_bytes = sum(v for k, v in sent.items() if not k.startswith("reference"))
            reference = sent["reference: every trial"]
            median = statistics.median(w[0] for w in warm)
            seen = statistics.median(w[1] for w in warm)
            runs = " ".join(f"{w[0]:.2f}" for w in warm)
            ratio = reference / page_bytes
            print(f"{n:>8} {cold[0]:>7.2f} {median:>7.2f} {seen:>7.2f} {runs:>16} "
                  f"{page_bytes:>11,} {reference:>11,} {ratio:>6.0f}x")  # fmt: skip
            each = ", ".join(f"{k} {v:,}" for k, v in sent.items())
            print(f"         bytes per response: {each}")
            if n in TARGETS and median > TARGETS[n]:
                missed.append(f"{n} trials: {median:.2f} s > {TARGETS[n]} s")
        browser.close()
    for line in missed:
        print("MISSED", line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
