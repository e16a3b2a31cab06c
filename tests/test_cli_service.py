"""`hpo create`, `ask`, `tell`, `intermediate`, `heartbeat`: a training loop in the shell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.records import TrialState

HPO = str(Path(sys.executable).parent / "hpo")
STUDY = """
name = "demo"
trials = 4
seed = 0
[[space]]
name = "x"
type = "float"
low = -2.0
high = 2.0
[[space]]
name = "act"
type = "categorical"
choices = ["relu", "tanh", "$(touch pwned)'; touch pwned2"]
"""

# The loop README and docs/service.md show, as a user types it.
LOOP = """
set -u
hpo create demo.toml
while trial=$(hpo ask demo --format env); do
    eval "$trial"
    loss=$(python3 -c "print(($HPO_PARAM_x - 1) ** 2)")
    hpo intermediate demo "$HPO_TRIAL" 0 "$loss" > /dev/null
    hpo tell demo "$HPO_TRIAL" "$loss"
done
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    (tmp_path / "demo.toml").write_text(STUDY)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_bash_training_loop_with_only_ask_and_tell(workdir):
    env = {**os.environ, "PATH": f"{Path(HPO).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", LOOP], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    study = hpo.load_study("demo", "hpo.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4  # the budget, exactly
    assert all(t.value == pytest.approx((t.params["x"] - 1) ** 2) for t in study.trials)
    assert all(t.intermediate == {0: t.value} for t in study.trials)
    assert "has met its budget of 4 trials" in result.stderr  # how the loop ended
    assert not list(workdir.glob("pwned*"))  # a choice's text never runs


def test_ask_prints_text_json_or_shell_assignments(workdir):
    invoke("create", "demo.toml")
    text = invoke("ask", "demo")
    assert text.exit_code == 0 and text.stdout.startswith("trial 0\n  x = ")
    asked = json.loads(invoke("ask", "demo", "--json").stdout)
    assert asked["number"] == 1 and set(asked["params"]) == {"x", "act"}
    env = invoke("ask", "demo", "--format", "env").stdout.splitlines()
    assert env[0] == "HPO_TRIAL=2" and env[1].startswith("HPO_PARAM_x=")
    running = hpo.load_study("demo", "hpo.db").trials
    assert [t.state for t in running] == [TrialState.RUNNING] * 3
    assert running[0].worker.startswith("hpo-ask@")


def test_ask_exits_3_when_no_trial_can_be_given(workdir):
    invoke("create", "demo.toml", "--trials", "1")
    assert invoke("ask", "demo").exit_code == 0
    result = invoke("ask", "demo")
    assert result.exit_code == 3
    assert "running in other workers" in result.stderr


def test_tell_states_and_bad_tells(workdir):
    invoke("create", "demo.toml")
    for _ in range(3):
        invoke("ask", "demo")
    assert invoke("tell", "demo", "0", "0.5").stdout == "trial 0 COMPLETE 0.5\n"
    assert invoke("tell", "demo", "0", "0.5").exit_code == 0  # again: harmless
    again = invoke("tell", "demo", "0", "0.7")
    assert again.exit_code == 2 and "COMPLETE already" in again.stderr
    assert "expected a number" in invoke("tell", "demo", "1", "fast").stderr
    assert "has no trial 9" in invoke("tell", "demo", "9", "1").stderr
    assert invoke("intermediate", "demo", "1", "3", "0.25").stdout == "continue\n"
    assert invoke("tell", "demo", "1", "--state", "pruned").stdout == "trial 1 PRUNED 0.25\n"
    failed = invoke("tell", "demo", "2", "--state", "fail", "--error", "out of memory")
    assert failed.stdout == "trial 2 FAIL\n"
    study = hpo.load_study("demo", "hpo.db")
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ]
    assert study.trials[2].error == "out of memory"


def test_a_trial_without_a_heartbeat_for_its_lease_is_asked_again(workdir):
    invoke("create", "demo.toml")
    first = json.loads(invoke("ask", "demo", "--json", "--lease", "0.01").stdout)
    assert invoke("heartbeat", "demo", "0").exit_code == 0
    import time

    time.sleep(0.05)  # the lease of 10 ms has passed: lost, whatever the machine's load
    second = json.loads(invoke("ask", "demo", "--json").stdout)
    assert second["params"] == first["params"]  # its point, asked again
    lost = hpo.load_study("demo", "hpo.db").trials[0]
    assert lost.state == TrialState.FAIL and "worker lost" in lost.error
    gone = invoke("heartbeat", "demo", "0")
    assert gone.exit_code == 2 and "FAIL, not running" in gone.stderr


def test_the_pruner_decides_on_intermediate_values(workdir):
    (workdir / "demo.toml").write_text('pruner = { name = "threshold", upper = 1.0 }\n' + STUDY)
    invoke("create", "demo.toml")
    invoke("ask", "demo")
    assert invoke("intermediate", "demo", "0", "0", "0.5").stdout == "continue\n"
    decided = json.loads(invoke("intermediate", "demo", "0", "1", "3.0", "--json").stdout)
    assert decided == {"number": 0, "step": 1, "prune": True}
