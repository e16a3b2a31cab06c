"""hpo.connect and `hpo worker --storage http://...` against a real `hpo serve`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import default_sigint
from serving import HPO, READ_TOKEN, WRITE_TOKEN, Proxy, Served, guarded_server

import hpo
from hpo.http_client import Http
from hpo.records import TrialState

SPACE = [{"name": "x", "type": "float", "low": -5.0, "high": 5.0}]
_names = iter(range(10**6))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = guarded_server(tmp_path_factory.mktemp("remote"))
    yield server
    server.stop()


def name() -> str:
    return f"r{next(_names)}"


def test_optimize_against_the_server_as_against_a_local_study(served: Served) -> None:
    server = hpo.connect(served.url, token=WRITE_TOKEN)
    study = server.create_study(name(), SPACE, budget=12, sampler="tpe", seed=3, pruner="median")

    def objective(trial: hpo.Trial) -> float:
        width = trial.suggest_int("width", 1, 4)  # define-by-run: sampled by the server
        kind = trial.suggest_categorical("kind", ["a", "b"])
        for step in range(3):
            trial.report((trial.params["x"] - 1) ** 2 + step, step)
            if trial.should_prune():
                raise hpo.TrialPruned
        trial.set_user_attr("noise", float(trial.rng.random()))
        return (trial.params["x"] - 1) ** 2 + width / 10 + (kind == "b")

    study.optimize(objective, n_jobs=2)
    trials = study.trials
    assert len(trials) == 12 and study.n_counted == 12
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(set(t.params) == {"x", "width", "kind"} and "noise" in t.user_attrs for t in done)
    assert all(sorted(t.intermediate) == [0, 1, 2] for t in done)
    assert study.best_value == min(t.value for t in done)
    assert study.best_params == study.best_trial.params
    # the server holds exactly what the client saw
    local = hpo.load_study(study.name, served.storage)
    assert [(t.number, t.state, t.value, t.params) for t in local.trials] == [
        (t.number, t.state, t.value, t.params) for t in trials
    ]
    assert set(local.suggested_params) == {"width", "kind"}
    study.optimize(objective)  # the budget is met: nothing more runs
    assert len(study.trials) == 12


def test_ask_tell_errors_are_hpos_own(served: Served) -> None:
    study = hpo.connect(served.url, token=WRITE_TOKEN).create_study(name(), SPACE, budget=2)
    study.enqueue_trial({"x": 0.5})
    trial = study.ask()
    assert trial.params == {"x": 0.5}
    first = study.tell(trial, 0.25)
    assert study.tell(trial, 0.25) == first  # a retry: the same answer
    with pytest.raises(hpo.TrialStateError, match="COMPLETE already"):
        study.tell(trial.number, 0.5)
    with pytest.raises(hpo.InvalidValueError):
        study.tell(study.ask(), float("nan"))
    with pytest.raises(hpo.BudgetMet):
        study.ask()
    with pytest.raises(hpo.StudyNotFoundError):
        hpo.connect(served.url, "nope", token=WRITE_TOKEN)
    reader = hpo.connect(served.url, study.name, token=READ_TOKEN)
    assert reader.best_value == 0.25
    with pytest.raises(hpo.HpoError, match="read-only"):
        reader.enqueue_trial({"x": 1.0})
    with pytest.raises(hpo.HpoError, match="invalid token"):
        hpo.connect(served.url, study.name, token="x" * 20)


def test_a_study_whose_name_holds_slashes_is_reached(served: Served) -> None:
    """A comparison's members are named NAME/objective/sampler/seed-K: every route takes
    them, the study's own (get, delete) included."""
    server = hpo.connect(served.url, token=WRITE_TOKEN)
    member = f"{name()}/branin/random/seed-0"
    study = server.create_study(member, SPACE, budget=2, sampler="random")
    trial = study.ask()
    assert not study.report(trial.number, 1.0, 0)
    study.tell(trial, 0.5)
    assert hpo.connect(served.url, member, token=READ_TOKEN).best_value == 0.5
    assert [t.number for t in study.trials] == [0]
    assert study.trials_page(limit=1).total == 1
    assert member in [s["name"] for s in server.studies()]
    server.delete_study(member)
    with pytest.raises(hpo.StudyNotFoundError):
        hpo.connect(served.url, member, token=WRITE_TOKEN)


def test_a_fast_loop_reuses_its_connection(served: Served) -> None:
    """Back-to-back requests go over one kept-alive connection: the server's access log
    names each request's client port, and they repeat."""
    created = hpo.connect(served.url, token=WRITE_TOKEN).create_study(name(), SPACE)
    for _ in range(10):
        record = created.start_trial()
        created.tell(record.number, 1.0)
    path = f"/api/studies/{created.name}/ask"
    ports = re.findall(rf'127\.0\.0\.1:(\d+) - "POST {re.escape(path)} ', served.log.read_text())
    assert len(ports) == 10
    assert len(set(ports)) < len(ports)


def test_a_call_after_the_server_restarted_is_made_afresh(served: Served) -> None:
    """The kept connection died with the server: the next call, even one that is not
    safe to repeat, opens a new one (and waits for the server) instead of failing."""
    server = hpo.connect(served.url, token=WRITE_TOKEN)
    server.create_study(name(), SPACE)
    served.kill()
    served.start()
    created = server.create_study(name(), SPACE)  # not retried if it might have been sent
    assert created.start_trial().number == 0


def test_a_client_goes_through_the_proxy_its_environment_names(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    served.request("GET", "/api/studies")  # urllib used before the proxy is named
    with Proxy(served.url) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        study = hpo.connect(served.url, token=WRITE_TOKEN).create_study(name(), SPACE)
        study.tell(study.start_trial().number, 2.0)
        assert study.best_value == 2.0
    assert ("POST", f"{served.url}/api/studies/{study.name}/ask") in proxy.forwarded


def test_a_server_under_a_path_prefix_is_reached(served: Served) -> None:
    """A reverse proxy that serves hpo at https://host/hpo/: the URL's path is kept."""
    with Proxy(served.url, prefix="/hpo") as proxy:
        study = hpo.connect(f"{proxy.url}/hpo/", token=WRITE_TOKEN).create_study(name(), SPACE)
        study.tell(study.start_trial().number, 3.0)
        assert study.best_value == 3.0
    assert ("POST", f"/hpo/api/studies/{study.name}/ask") in proxy.forwarded


def test_an_error_answer_is_read_and_the_connection_kept(served: Served) -> None:
    http = Http(served.url, token=WRITE_TOKEN)
    with pytest.raises(hpo.StudyNotFoundError):
        http.call("GET", "/api/studies/no-such-study")
    assert http.call("GET", "/api/studies") is not None


def test_a_client_that_vanishes_mid_trial_has_its_point_asked_again(served: Served) -> None:
    study = hpo.connect(served.url, token=WRITE_TOKEN).create_study(name(), SPACE, budget=3)
    vanish = (
        "import os, hpo; study = hpo.connect(os.environ['URL'], os.environ['NAME']);"
        "trial = study.ask(lease=0.5); print(trial.number, trial.params['x']); os._exit(0)"
    )
    env = {**os.environ, "URL": served.url, "NAME": study.name, "HPO_TOKEN": WRITE_TOKEN}
    out = subprocess.run(
        [sys.executable, "-c", vanish], env=env, capture_output=True, text=True, check=True
    )
    number, x = out.stdout.split()
    time.sleep(0.7)
    retry = study.ask()
    assert retry.params["x"] == float(x) and retry.number != int(number)
    assert study.trial(int(number)).state == TrialState.FAIL


def test_ctrl_c_in_a_client_gives_its_trial_back(served: Served) -> None:
    """Ctrl-C in study.optimize on a client: the trial FAILs "interrupted" on the server
    and its point is asked again, as for a local worker."""
    study = hpo.connect(served.url, token=WRITE_TOKEN).create_study(name(), SPACE, budget=3)
    client = (
        "import os, sys, time, hpo\n"
        "study = hpo.connect(os.environ['URL'], os.environ['NAME'])\n"
        "def objective(trial):\n"
        "    print(trial.number, trial.params['x'], flush=True)\n"
        "    time.sleep(60)\n"
        "try:\n"
        "    study.optimize(objective)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(7)\n"
    )
    env = {**os.environ, "URL": served.url, "NAME": study.name, "HPO_TOKEN": WRITE_TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-c", client],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # Ctrl-C reaches it even from a test run in the background
    )
    assert process.stdout is not None
    number, x = process.stdout.readline().split()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 7
    given_back = study.trial(int(number))
    assert given_back.state == TrialState.FAIL and "interrupted" in (given_back.error or "")
    retry = study.ask()
    assert retry.params["x"] == float(x) and retry.number != int(number)
    assert study.interrupt(int(number)).state == TrialState.FAIL  # again: harmless


def test_hpo_worker_runs_a_study_on_the_server(served: Served, tmp_path: Path) -> None:
    server = hpo.connect(served.url, token=WRITE_TOKEN)
    study = server.create_study(name(), objective="branin", budget=6, sampler="random")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    env["HPO_TOKEN"] = WRITE_TOKEN
    done = subprocess.run(
        [HPO, "worker", study.name, "--storage", served.url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert study.n_counted == 6 and not (tmp_path / "hpo.db").exists()
    assert '"n_counted": 6' in done.stdout
    env["HPO_TOKEN"] = READ_TOKEN
    refused = subprocess.run(
        [HPO, "worker", study.name, "--storage", served.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert READ_TOKEN not in refused.stderr


def readme_blocks(section: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block in the README section titled `section`."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", body, flags=re.S)


def test_the_readmes_service_examples_run(served: Served, tmp_path: Path) -> None:
    blocks = readme_blocks("Running hpo as a service")
    assert [lang for lang, _ in blocks] == ["bash", "bash", "python"]
    assert "hpo serve" in blocks[0][1]  # started here instead, on a free port
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    env["HPO_TOKEN"] = WRITE_TOKEN
    here = served.url.removeprefix("http://")
    for lang, code in blocks[1:]:
        code = code.replace("127.0.0.1:8000", here)
        command = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable]
        done = subprocess.run(
            command,
            input=code if lang == "python" else None,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (code, done.stdout, done.stderr)
    study = hpo.connect(served.url, "demo", token=READ_TOKEN)
    assert len(study.trials) == 11 and study.trial(0).value == 0.49


def test_the_bash_loop_over_http_in_docs_runs(served: Served, tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "service.md").read_text()
    section = docs.split("\n## A training loop in bash, over HTTP\n", 1)[1].split("\n## ", 1)[0]
    (loop,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    hpo.connect(served.url, token=WRITE_TOKEN).create_study("demo-loop", SPACE, budget=4)
    loop = loop.replace("127.0.0.1:8000", served.url.removeprefix("http://"))
    loop = loop.replace("/studies/demo/", "/studies/demo-loop/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    env["HPO_TOKEN"] = WRITE_TOKEN
    done = subprocess.run(
        ["bash", "-uo", "pipefail", "-c", loop], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    study = hpo.connect(served.url, "demo-loop", token=READ_TOKEN)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert all(t.value == pytest.approx((t.params["x"] - 1) ** 2) for t in study.trials)
