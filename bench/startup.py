"""Start-up: how long the `hpo` command takes before it does anything, against Optuna.

Runs each measurement several times, alternating hpo's and Optuna's, and prints
medians:

- the import time `python -X importtime` reports for `import hpo.cli` (what every
  `hpo` command loads first) and for `import optuna`, and their ratio;
- the wall time of whole commands as a user types them: `hpo --version`,
  `hpo --help`, `hpo studies` and `hpo trials NAME --limit 20` on a study of
  `--trials` trials (made once, in a temporary folder);
- which heavy libraries each command loaded (none of SciPy, matplotlib or a
  reference backend may be).

Targets (issue 17): `import hpo.cli` at most Optuna's `import optuna` (median
ratio <= 1); no heavy library loaded by --help, --version and studies. The
exit status is 1 when one is missed.

    python bench/startup.py                 # 7 runs, a study of 2,000 trials
    python bench/startup.py --runs 11 --trials 100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("scipy", "matplotlib", "optuna", "hyperopt", "skopt", "torch", "sklearn")
HPO = str(Path(sys.executable).parent / "hpo")


def import_seconds(module: str) -> float:
    """The cumulative import time of `module`, as -X importtime reports it."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stderr.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1e6
    raise RuntimeError(f"no import time for {module}")


def command_seconds(args: list[str], folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run([HPO, *args], cwd=folder, capture_output=True, check=True)
    return time.perf_counter() - start


def heavy_loaded(args: list[str], folder: Path) -> list[str]:
    """The heavy top-level packages loaded by `hpo ARGS`."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print(sorted(m for m in {HEAVY!r} if m in sys.modules), "
        "file=sys.stderr))\n"
        "from hpo.__main__ import main\n"
        f"sys.argv = ['hpo', *{args!r}]\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=False
    )
    return eval(result.stderr.strip().splitlines()[-1])


def make_study(folder: Path, trials: int) -> None:
    """A study of `trials` finished trials, added in bulk (running them would time the
    sampler, not start-up)."""
    import numpy as np

    import hpo
    from hpo.trial import create_trial

    space = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]
    study = hpo.create_study("big", str(folder / "hpo.db"), space, seed=0)
    xs = np.random.default_rng(0).random(trials)
    study.add_trials([create_trial(params={"x": float(x)}, value=float(x)) for x in xs])
    study.storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    commands = {
        "hpo --version": ["--version"],
        "hpo --help": ["--help"],
        "hpo studies": ["studies"],
        "hpo trials big --limit 20": ["trials", "big", "--limit", "20"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.pop("HPO_STORAGE", None)
        make_study(folder, args.trials)
        imports: dict[str, list[float]] = {"hpo.cli": [], "optuna": []}
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # alternating, so that the machine's load hits both
            for module, times in imports.items():
                times.append(import_seconds(module))
            for name, words in commands.items():
                walls[name].append(command_seconds(words, folder))
        loaded = {name: heavy_loaded(words, folder) for name, words in commands.items()}
    ratios = [h / o for h, o in zip(imports["hpo.cli"], imports["optuna"], strict=True)]
    print(f"start-up, medians of {args.runs} runs (load average {os.getloadavg()[0]:.1f})")
    for module, times in imports.items():
        print(f"  import {module:8s} {statistics.median(times) * 1000:7.1f} ms (-X importtime)")
    ratio = statistics.median(ratios)
    print(f"  import hpo.cli / import optuna: {ratio:.2f} (median of run-by-run ratios)")
    for name, times in walls.items():
        print(
            f"  {name:28s} {statistics.median(times) * 1000:7.1f} ms wall, heavy: "
            f"{', '.join(loaded[name]) or 'none'}"
        )
    missed = []
    if ratio > 1.0:
        missed.append(f"import hpo.cli is {ratio:.2f}x import optuna (target <= 1)")
    for name in ("hpo --version", "hpo --help", "hpo studies"):
        if loaded[name]:
            missed.append(f"{name} loaded {', '.join(loaded[name])}")
    print("targets: " + ("; ".join(missed) if missed else "met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
