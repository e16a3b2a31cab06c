"""Storage overhead per trial: hpo on a file-backed SQLite database, end to end.

Runs a study of N trials (random sampler, trivial objective, three float
parameters) several times and prints the median cost per trial, with two
references measured in the same run, interleaved with hpo's runs:

- hpo on an in-memory database (what the file and its transactions add);
- Optuna's RDB storage on a file-backed SQLite database, if optuna is
  installed (pip install optuna).

Target (issue 3): at most 1.5 ms per trial on the file database. The exit
status is 1 when the median misses it.

    python bench/storage_overhead.py                 # 2,000 trials, 5 runs
    python bench/storage_overhead.py --trials 500 --runs 3 --no-optuna
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import hpo

TARGET_MS = 1.5
SPACE = [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(3)]


def hpo_run(trials: int, folder: Path | None) -> float:
    """Seconds for `trials` trials; folder None means an in-memory database."""
    storage = None if folder is None else str(folder / "hpo.db")
    study = hpo.create_study("bench", storage, SPACE, sampler="random", seed=0)
    start = time.perf_counter()
    study.optimize(lambda trial: sum(trial.params.values()), n_trials=trials)
    elapsed = time.perf_counter() - start
    assert len(study.trials) == trials
    study.storage.close()
    return elapsed


def optuna_run(trials: int, folder: Path) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'optuna.db'}", sampler=optuna.samplers.RandomSampler(seed=0)
    )

    def objective(trial: optuna.Trial) -> float:
        return sum(trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(3))

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - start


def measure(runs: int, candidates: dict[str, Callable[[Path], float]]) -> dict[str, list[float]]:
    """Each candidate once per round, in turn, each in a fresh folder."""
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for round_number in range(runs):
        for name, run in candidates.items():
            with tempfile.TemporaryDirectory() as folder:
                seconds[name].append(run(Path(folder)))
        print(f"  round {round_number + 1}/{runs} done", file=sys.stderr)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-optuna", action="store_true", help="skip the Optuna reference")
    args = parser.parse_args()
    logging.getLogger("hpo").setLevel(logging.WARNING)

    candidates: dict[str, Callable[[Path], float]] = {
        "hpo, SQLite file": lambda folder: hpo_run(args.trials, folder),
        "hpo, in memory": lambda folder: hpo_run(args.trials, None),
    }
    if not args.no_optuna:
        try:
            import optuna  # noqa: F401
        except ImportError:
            print(
                "optuna is not installed: no Optuna reference (pip install optuna)", file=sys.stderr
            )
        else:
            candidates["optuna RDB, SQLite file"] = lambda folder: optuna_run(args.trials, folder)
    hpo_run(50, None)  # warm up imports and caches
    seconds = measure(args.runs, candidates)

    per_trial = {name: [s / args.trials * 1000 for s in values] for name, values in seconds.items()}
    print(f"\n{args.trials} trials per run, {args.runs} runs; ms per trial (median [min - max]):")
    for name, values in per_trial.items():
        print(
            f"  {name:26s} {statistics.median(values):7.3f}  "
            f"[{min(values):.3f} - {max(values):.3f}]"
        )
    ours = statistics.median(per_trial["hpo, SQLite file"])
    if "optuna RDB, SQLite file" in per_trial:
        ratios = [
            o / h
            for o, h in zip(
                per_trial["optuna RDB, SQLite file"], per_trial["hpo, SQLite file"], strict=True
            )
        ]
        print(f"  Optuna RDB / hpo, run by run: median {statistics.median(ratios):.1f}x")
    verdict = "meets" if ours <= TARGET_MS else "MISSES"
    print(f"hpo on an SQLite file: {ours:.3f} ms per trial, {verdict} the target of {TARGET_MS} ms")
    return 0 if ours <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
