"""The screenshots of docs/dashboard.md, from a real server and a real browser.

Builds a small storage in a temporary directory: a TPE study of 300 trials
run by four worker threads through ask/tell (each trial reports ten steps of
a learning curve and a median pruner stops the poor ones; each takes 10-70 ms,
one worker is slower, so the timeline shows stragglers), and a comparison of
random, sobol and tpe on branin (3 seeds x 30 trials). Then `hpo serve` on a
free port and headless Chromium photograph each page into docs/figures/.

    python bench/dashboard_screens.py              # about 30 s on two cores
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import hpo
from hpo.comparison import compare

REPO = Path(__file__).resolve().parent.parent
FIGURES = REPO / "docs" / "figures"
HPO = str(Path(sys.executable).parent / "hpo")
TOKEN = "screens-token-0123456789abcdef"
SPACE = [
    {"name": "lr", "type": "float", "low": 1e-5, "high": 1.0, "log": True},
    {"name": "units", "type": "int", "low": 16, "high": 512, "log": True},
    {"name": "dropout", "type": "float", "low": 0.0, "high": 0.6},
    {"name": "activation", "type": "categorical", "choices": ["relu", "tanh", "gelu"]},
]


def curve(params: dict, step: int) -> float:
    """A made-up validation loss after `step` epochs: best near lr 3e-3, 128 units."""
    floor = (math.log10(params["lr"]) + 2.5) ** 2 / 4 + (math.log2(params["units"]) - 7) ** 2 / 20
    floor += (
        0.3 * abs(params["dropout"] - 0.2)
        + {"relu": 0.0, "tanh": 0.15, "gelu": 0.05}[params["activation"]]
    )
    return 0.1 + floor + 2.0 * math.exp(-0.4 * step)


def worker(url: str, name: str, slow: float, rng: random.Random) -> None:
    study = hpo.load_study("mlp-demo", url)
    while True:
        try:
            trial = study.ask(worker=name)
        except hpo.errors.BudgetMet:
            return
        value = 0.0
        for step in range(10):
            time.sleep(slow * rng.uniform(0.001, 0.007))
            value = curve(trial.params, step) + rng.gauss(0, 0.02)
            trial.report(value, step)
            if trial.should_prune():
                study.tell(trial, state="pruned")
                break
        else:
            study.tell(trial, value)


def build(url: str, work: Path) -> None:
    hpo.create_study(
        "mlp-demo", url, space=SPACE, sampler="tpe", pruner="median", budget=300, seed=1
    )
    threads = [
        threading.Thread(
            target=worker, args=(url, f"gpu-{k}", 3.0 if k == 3 else 1.0, random.Random(k))
        )
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    config = work / "compare.toml"
    config.write_text(
        'name = "branin-demo"\nobjective = "branin"\nsamplers = ["random", "sobol", "tpe"]\n'
        "seeds = 3\ntrials = 30\n"
    )
    compare(config, url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    from playwright.sync_api import sync_playwright

    FIGURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = str(work / "demo.db")
        build(url, work)
        (work / "tokens.txt").write_text(f"write {TOKEN}\n")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
        server = subprocess.Popen(
            [
                HPO,
                "serve",
                "--port",
                str(port),
                "--storage",
                url,
                "--token-file",
                str(work / "tokens.txt"),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                    args=["--no-sandbox", "--disable-gpu"],
                )
                shoot(browser, base)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


def shoot(browser: object, base: str) -> None:
    def page(scheme: str = "light", height: int = 900) -> object:
        context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": height}, color_scheme=scheme
        )
        return context.new_page()

    study = "/study/mlp-demo"
    p = page()
    p.goto(f"{base}/#token={TOKEN}&/")
    p.wait_for_selector("tr.group")
    p.screenshot(path=FIGURES / "dashboard-studies.png")
    for scheme in ("light", "dark"):
        p = page(scheme, 1900)
        p.goto(f"{base}/#token={TOKEN}&{study}")
        p.wait_for_selector("[data-chart=importance] .bar")
        p.wait_for_selector("[data-chart=slices] canvas")
        p.wait_for_timeout(300)
        p.screenshot(path=FIGURES / f"dashboard-study-{scheme}.png")
    p = page()
    p.goto(f"{base}/#token={TOKEN}&{study}")
    p.wait_for_selector("[data-chart=slices] canvas")
    p.locator("#trials").scroll_into_view_if_needed()
    p.click("button[data-sort=value]")
    p.wait_for_selector("th[aria-sort=ascending] button[data-sort=value]")
    p.locator("#trials").scroll_into_view_if_needed()
    p.screenshot(path=FIGURES / "dashboard-trials.png")
    p.click("table.trials tbody tr[data-number] >> nth=0")
    p.wait_for_selector("dialog[open] .detail canvas")
    p.screenshot(path=FIGURES / "dashboard-trial.png")
    p.keyboard.press("Escape")
    p.click("button:text('Enqueue a point…')")
    p.wait_for_selector("dialog[open] input")
    p.screenshot(path=FIGURES / "dashboard-enqueue.png")
    p = page(height=1300)
    p.goto(f"{base}/#token={TOKEN}&/compare/branin-demo")
    p.wait_for_selector("[data-chart=spread] canvas")
    p.screenshot(path=FIGURES / "dashboard-comparison.png")
    print("wrote", ", ".join(sorted(f.name for f in FIGURES.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main()
