"""The `hpo` command, through click's CliRunner and as a real subprocess.

Bad input must give one line on stderr, exit code 2, no traceback and no
half-created study; a killed process must lose no completed trial.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.records import TrialState
from tests.conftest import default_sigint

HPO = str(Path(sys.executable).parent / "hpo")

STUDY = """
name = "demo"
objective = "mixed_nn"
trials = 20
seed = 0
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory, so the default ./hpo.db lands in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hpo: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


# -- a study from start to finish --------------------------------------------------------


def test_run_shows_one_line_per_trial_and_a_summary(workdir):
    write(workdir / "demo.toml", STUDY)
    result = invoke("run", "demo.toml")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sum(line.startswith("trial ") and " COMPLETE " in line for line in lines) == 20
    assert "Best value" in result.stdout and "hpo trials demo" in result.stdout
    study = hpo.load_study("demo", "hpo.db")
    assert len(study.trials) == 20 and study.budget == 20


def test_flags_override_the_study_file(workdir):
    write(workdir / "demo.toml", STUDY)
    result = invoke(
        "run",
        "demo.toml",
        "--name",
        "other",
        "--trials",
        "5",
        "--seed",
        "3",
        "--sampler",
        "grid",
        "--storage",
        "x.db",
    )
    assert result.exit_code == 0, result.output
    study = hpo.load_study("other", "x.db")
    assert (len(study.trials), study.seed, study.info.sampler) == (5, 3, "grid")


def test_inspection_commands(workdir):
    write(workdir / "demo.toml", STUDY)
    assert invoke("run", "demo.toml").exit_code == 0
    values = [t.value for t in hpo.load_study("demo", "hpo.db").trials]

    listing = json.loads(invoke("studies", "--json").stdout)
    assert listing[0]["name"] == "demo" and listing[0]["counts"] == {"COMPLETE": 20}
    assert listing[0]["best_value"] == min(values)
    assert "demo" in invoke("studies").stdout

    best = json.loads(invoke("best", "demo", "--json").stdout)
    assert best["value"] == min(values)
    assert f"trial {best['number']}" in invoke("best", "demo").stdout

    top = json.loads(invoke("trials", "demo", "--sort", "value", "--limit", "3", "--json").stdout)
    assert [t["value"] for t in top] == sorted(values)[:3]
    table = invoke("trials", "demo", "--state", "complete").stdout
    assert len(table.strip().splitlines()) == 22  # header, rule, 20 rows
    assert invoke("trials", "demo", "--state", "FAIL").stdout.strip() == "No trials."

    shown = invoke("show", "demo", "4").stdout
    assert "trial 4: COMPLETE" in shown and "params:" in shown and "activation" in shown
    assert json.loads(invoke("show", "demo", "4", "--json").stdout)["number"] == 4


def test_trials_pages_sort_best_first_and_longest_first(workdir):
    space = [{"name": "x", "type": "float", "low": 0, "high": 1}]
    study = hpo.create_study("paged", "hpo.db", space, seed=0, direction="maximize")
    values = [3.0, 9.0, None, 1.0, 7.0, 5.0]
    study.storage.add_trials(
        study.info.study_id,
        [
            hpo.FrozenTrial(
                trial_id=-1,
                number=-1,
                state=TrialState.FAIL if value is None else TrialState.COMPLETE,
                params={"x": 0.5},
                value=value,
                started_at=100.0,
                finished_at=100.0 + i * (7 % (i + 2)),
            )
            for i, value in enumerate(values)
        ],
    )

    def numbers(*args: str) -> list[int]:
        result = invoke("trials", "paged", "--json", *args)
        assert result.exit_code == 0, result.output
        return [t["number"] for t in json.loads(result.stdout)]

    assert numbers() == [0, 1, 2, 3, 4, 5]
    assert numbers("--sort", "value") == [1, 4, 5, 0, 3, 2]  # maximize: highest first
    assert numbers("--sort", "value", "--limit", "2", "--offset", "1") == [4, 5]
    assert numbers("--sort", "value", "--state", "fail") == [2]
    durations = {i: i * (7 % (i + 2)) for i in range(6)}
    assert numbers("--sort", "duration") == sorted(durations, key=lambda i: (-durations[i], i))
    assert numbers("--offset", "6") == []
    table = invoke("trials", "paged", "--sort", "value", "--limit", "1").stdout
    assert len(table.strip().splitlines()) == 3 and table.splitlines()[2].startswith("1 ")


def test_export_csv_and_json(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml")
    rows = list(csv.DictReader(io.StringIO(invoke("export", "demo").stdout)))
    assert len(rows) == 20
    assert {"number", "state", "value", "params_lr", "params_activation"} <= set(rows[0])
    result = invoke("export", "demo", "--format", "json", "-o", "out.json")
    assert result.exit_code == 0
    data = json.loads((workdir / "out.json").read_text())
    assert data["name"] == "demo" and len(data["trials"]) == 20
    assert data["space"][0]["name"] == "lr"


def test_enqueue_then_resume_runs_the_point_first(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml", "--trials", "3")
    result = invoke(
        "enqueue",
        "demo",
        "--param",
        "lr=0.01",
        "-p",
        "batch_size=64",
        "-p",
        "activation=relu",
        "-p",
        "units=450",
        "-p",
        "dropout=0.2",
    )
    assert result.exit_code == 0 and "queued trial 3" in result.stdout
    assert "WAITING" in invoke("trials", "demo", "--state", "waiting").stdout
    result = invoke("resume", "demo", "--trials", "5")
    assert result.exit_code == 0, result.output
    trials = hpo.load_study("demo", "hpo.db").trials
    assert len(trials) == 5 and trials[3].value == pytest.approx(0.0)
    assert trials[3].params["batch_size"] == 64 and isinstance(trials[3].params["units"], int)


def test_delete(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml")
    assert_user_error(invoke("delete", "demo"), "without --yes")
    assert invoke("delete", "demo", "--yes").exit_code == 0
    assert invoke("studies").stdout.strip() == "No studies."


def test_every_command_has_help():
    for command in [
        "run",
        "resume",
        "studies",
        "trials",
        "best",
        "show",
        "enqueue",
        "export",
        "delete",
    ]:
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout


# -- bad input: one line, exit 2, nothing created --------------------------------------------


BAD_FILES = {
    "malformed TOML": ('name = "x\nobjective = "branin"', "invalid TOML"),
    "invalid space": (
        'objective = "branin"\ntrials = 3\n[[space]]\nname = "a"\n'
        'type = "float"\nlow = 2.0\nhigh = 1.0',
        "low (2.0) must be less than",
    ),
    "unknown sampler": (
        'objective = "branin"\ntrials = 3\nsampler = "tpee"',
        "unknown sampler 'tpee'",
    ),
    "unknown objective": ('objective = "branni"\ntrials = 3', "did you mean 'branin'"),
    "missing objective file": ('objective = "nope.py:f"\ntrials = 3', "not found (looked for '/"),
    "unknown key": ('objective = "branin"\ntrails = 3', "did you mean 'trials'"),
    "no budget": ('objective = "branin"', "no budget"),
    "bad sampler option": (
        'objective = "branin"\ntrials = 3\n[sampler]\nname = "grid"\npionts = 3',
        "no option 'pionts'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_study_files(workdir, case):
    text, fragment = BAD_FILES[case]
    write(workdir / "bad.toml", text)
    assert_user_error(invoke("run", "bad.toml"), fragment)
    assert not (workdir / "hpo.db").exists()


def test_import_error_inside_the_objective_module(workdir):
    write(
        workdir / "obj.py", "import numpy\nimport no_such_module\n\ndef f(trial):\n    return 1.0\n"
    )
    write(workdir / "bad.toml", 'objective = "obj.py:f"\ntrials = 3')
    assert_user_error(invoke("run", "bad.toml"), "no_such_module", "line 2")
    assert not (workdir / "hpo.db").exists()


def test_missing_study_file(workdir):
    assert_user_error(invoke("run", "nope.toml"), "not found")


def test_unknown_study_and_trial(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml")
    assert_user_error(invoke("trials", "dmeo"), "no study named 'dmeo'", "did you mean 'demo'")
    assert_user_error(invoke("show", "demo", "99"), "no trial 99")
    assert_user_error(invoke("resume", "nope"), "no study named 'nope'")


def test_run_of_an_existing_study_is_refused(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml")
    assert_user_error(invoke("run", "demo.toml"), "already exists")
    assert len(hpo.load_study("demo", "hpo.db").trials) == 20


def test_bad_enqueue_leaves_nothing(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml")
    assert_user_error(invoke("enqueue", "demo", "-p", "lr=5"), "'lr'")
    assert_user_error(invoke("enqueue", "demo", "-p", "lr=fast"), "not a number")
    assert_user_error(invoke("enqueue", "demo", "-p", "activation=swish"), "not one of")
    assert_user_error(invoke("enqueue", "demo", "-p", "lrr=0.1"), "did you mean 'lr'")
    assert len(hpo.load_study("demo", "hpo.db").trials) == 20


def test_reading_commands_do_not_create_a_database(workdir):
    assert_user_error(invoke("studies"), "no hpo database")
    assert_user_error(invoke("trials", "x"), "no hpo database")
    assert not (workdir / "hpo.db").exists()


def test_storage_that_is_not_a_database(workdir):
    junk = write(workdir / "junk.db", "this is not a database\n" * 100)
    write(workdir / "demo.toml", STUDY)
    assert_user_error(invoke("run", "demo.toml", "--storage", str(junk)), "not an SQLite database")
    assert junk.read_text() == "this is not a database\n" * 100


def test_read_only_storage(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml", "--trials", "2")
    before = _dump(workdir / "hpo.db")
    read_only = f"sqlite:///file:{workdir / 'hpo.db'}?mode=ro&uri=true"
    assert_user_error(
        invoke("run", "demo.toml", "--name", "two", "--storage", read_only), "read-only"
    )
    assert "demo" in invoke("studies", "--storage", read_only).stdout
    assert_user_error(
        invoke("resume", "demo", "--trials", "4", "--storage", read_only), "read-only"
    )
    assert [s.info.name for s in hpo.studies("hpo.db")] == ["demo"]
    assert len(hpo.load_study("demo", "hpo.db").trials) == 2
    assert _dump(workdir / "hpo.db") == before


def _dump(path: Path) -> list[str]:
    """The database's content as SQL, read without writing (a checkpoint may move bytes)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_unreachable_server(workdir):
    write(workdir / "demo.toml", STUDY)
    result = invoke(
        "run", "demo.toml", "--storage", "postgresql+psycopg://postgres@127.0.0.1:1/test"
    )
    assert_user_error(result, "cannot connect")


def test_unknown_database_kind(workdir):
    write(workdir / "demo.toml", STUDY)
    assert_user_error(invoke("run", "demo.toml", "--storage", "nosuchdb://x/y"), "unknown database")


def test_storage_from_the_environment(workdir, monkeypatch):
    write(workdir / "demo.toml", STUDY)
    monkeypatch.setenv("HPO_STORAGE", str(workdir / "env.db"))
    assert invoke("run", "demo.toml", "--trials", "2").exit_code == 0
    assert (workdir / "env.db").exists() and not (workdir / "hpo.db").exists()
    assert "demo" in invoke("studies").stdout


@pytest.mark.parametrize("command", [("run", "demo.toml"), ("studies",), ("trials", "demo")])
def test_an_empty_storage_is_refused_not_taken_for_hpo_db(workdir, monkeypatch, command):
    write(workdir / "demo.toml", STUDY)
    assert_user_error(invoke(*command, "--storage", ""), "--storage is empty")
    monkeypatch.setenv("HPO_STORAGE", "")
    assert_user_error(invoke(*command), "HPO_STORAGE is empty")
    assert not (workdir / "hpo.db").exists()


HOSTILE = "\x1b]0;owned\x07\x1b[2J\u202e"  # retitle the window, clear the screen, reverse


def test_text_from_the_database_cannot_drive_the_terminal(workdir):
    """Anyone who can write to the database chooses names, values and errors: what the
    commands print of them goes through one sanitizer."""
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml", "--trials", "2")
    with sqlite3.connect(workdir / "hpo.db") as db:
        db.execute("UPDATE hpo_studies SET name = ?", (f"demo{HOSTILE}",))
        trial = db.execute("SELECT params FROM hpo_trials WHERE number = 0").fetchone()
        params = {**json.loads(trial[0]), "activation": HOSTILE}
        db.execute(
            "UPDATE hpo_trials SET params = ?, state = 'FAIL', error = ? WHERE number = 0",
            (json.dumps(params), f"Traceback\nValueError: {HOSTILE}"),
        )
        db.execute(
            "UPDATE hpo_trials SET user_attrs = ? WHERE number = 1",
            (json.dumps({HOSTILE: HOSTILE}),),
        )
    name = f"demo{HOSTILE}"
    outputs = [
        invoke("studies"),
        invoke("studies", "--all"),
        invoke("trials", name),
        invoke("show", name, "0"),
        invoke("show", name, "1"),
        invoke("best", name),
        invoke("trials", f"{name}x"),  # the error names it, with did-you-mean
    ]
    for result in outputs:
        for char in "\x1b\x07\u202e":
            assert char not in result.output, result.output
    assert "\\x1b]0;owned\\x07" in outputs[0].stdout  # shown, escaped, not hidden
    assert "\\x1b[2J" in outputs[3].stdout
    assert HOSTILE in invoke("export", name).stdout  # data into a pipe stays exact


def test_json_output_escapes_control_characters(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml", "--trials", "1")
    with sqlite3.connect(workdir / "hpo.db") as db:
        db.execute("UPDATE hpo_studies SET name = ?", (f"demo{HOSTILE}",))
    result = invoke("studies", "--json")
    assert "\x1b" not in result.stdout
    assert json.loads(result.stdout)[0]["name"] == f"demo{HOSTILE}"


def test_a_study_name_with_control_characters_is_refused(workdir):
    write(workdir / "demo.toml", STUDY)
    assert_user_error(invoke("run", "demo.toml", "--name", "a\x1b[2Jb"), "control characters")


def test_hints_never_print_a_password_and_can_be_pasted(monkeypatch):
    from hpo.connection import parse_url
    from hpo.display import command, password_note

    monkeypatch.delenv("HPO_STORAGE", raising=False)
    secret = parse_url("postgresql+psycopg://me:s3cret@db.example/hpo")
    line = command(secret, "trials", "demo")
    assert "s3cret" not in line and "***" not in line
    assert line == 'hpo trials demo --storage "$HPO_STORAGE"'
    assert "HPO_STORAGE set to the database URL" in password_note(secret)
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://me:s3cret@db.example/hpo")
    assert command(secret, "trials", "demo") == "hpo trials demo"  # the bare command works
    assert password_note(secret) == ""
    plain = parse_url("postgresql+psycopg://me@db.example/hpo")
    assert command(plain, "show", "my study", "3") == (
        "hpo show 'my study' 3 --storage postgresql+psycopg://me@db.example/hpo"
    )
    monkeypatch.delenv("HPO_STORAGE")
    assert command(parse_url("hpo.db"), "best", "demo") == "hpo best demo"


HEAVY = ("scipy", "matplotlib", "optuna", "hyperopt", "skopt", "torch", "sklearn")
LOADED = """
import atexit, sys
def loaded():
    print(sorted(m for m in sys.modules if m.split(".")[0] in {heavy}), file=sys.stderr)
atexit.register(loaded)
from hpo.__main__ import main
sys.argv = ["hpo", *{args}]
main()
"""


def test_import_hpo_loads_nothing_heavy():
    modules = (*HEAVY, "numpy", "sqlalchemy")
    code = f"import sys, hpo; print(sorted(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["studies"], ["studies", "--json"], ["run", "--help"]]
)
def test_the_command_starts_without_scipy_matplotlib_or_a_backend(workdir, args):
    """`hpo --help`, `--version` and `studies` must start at once (issue 17): the heavy
    libraries load only in the commands that use them."""
    hpo.create_study(
        "gp-study", "hpo.db", [{"name": "x", "type": "float", "low": 0, "high": 1}], sampler="gp"
    )
    code = LOADED.format(heavy=set(HEAVY), args=args)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


# -- real processes --------------------------------------------------------------------------


OBJECTIVES = """
import os, pathlib, time

def hang_on_3(trial):
    if trial.number == 3:
        pathlib.Path(os.environ["HPO_TEST_READY"]).touch()
        time.sleep(120)
    return trial.params["x"] ** 2

def fast(trial):
    time.sleep(0.002)
    return trial.params["x"] ** 2
"""

SPACE_TOML = '[[space]]\nname = "x"\ntype = "float"\nlow = -1.0\nhigh = 1.0\n'


def hpo_process(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HPO_TEST_READY": str(cwd / "ready")}
    env.pop("HPO_STORAGE", None)
    return subprocess.Popen(
        [HPO, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        **kwargs,
    )


def wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.mark.slow
def test_real_command_runs_and_prints_json(tmp_path):
    write(tmp_path / "objectives.py", OBJECTIVES)
    write(
        tmp_path / "s.toml",
        f'name = "s"\nobjective = "objectives.py:fast"\ntrials = 10\nseed = 1\n{SPACE_TOML}',
    )
    out, err = hpo_process("run", "s.toml", cwd=tmp_path).communicate(timeout=60)
    assert out.count(" COMPLETE ") == 10, err
    listed = subprocess.run(
        [HPO, "trials", "s", "--json"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert [t["number"] for t in json.loads(listed.stdout)] == list(range(10))
    bad = subprocess.run([HPO, "trials", "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_kill_9_mid_trial_then_resume(tmp_path):
    write(tmp_path / "objectives.py", OBJECTIVES)
    write(
        tmp_path / "s.toml",
        f'name = "s"\nobjective = "objectives.py:hang_on_3"\ntrials = 6\nseed = 2\n{SPACE_TOML}',
    )
    process = hpo_process("run", "s.toml", cwd=tmp_path)
    wait_for(tmp_path / "ready")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    db = tmp_path / "hpo.db"
    assert integrity(db) == "ok"
    trials = hpo.load_study("s", str(db)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    lost = trials[3].params

    out, err = hpo_process("resume", "s", cwd=tmp_path).communicate(timeout=60)
    assert "Best value" in out, err
    trials = hpo.load_study("s", str(db)).trials
    assert trials[3].state == TrialState.FAIL and "worker lost" in trials[3].error
    assert trials[4].params == lost and trials[4].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6
    assert integrity(db) == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_stores_the_trial_as_interrupted(tmp_path, signal_number):
    write(tmp_path / "objectives.py", OBJECTIVES)
    write(
        tmp_path / "s.toml",
        f'name = "s"\nobjective = "objectives.py:hang_on_3"\ntrials = 5\nseed = 2\n{SPACE_TOML}',
    )
    process = hpo_process("run", "s.toml", cwd=tmp_path)
    wait_for(tmp_path / "ready")
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted" in err and "hpo resume s" in err and "Traceback" not in err
    assert "5 trials, 3 counted toward a budget of 5 (3 complete, 1 fail, 1 waiting)" in err
    trials = hpo.load_study("s", str(tmp_path / "hpo.db")).trials
    assert trials[3].state == TrialState.FAIL
    assert trials[3].error == "interrupted (Ctrl-C or SIGTERM)"
    assert trials[4].state == TrialState.WAITING and trials[4].params == trials[3].params


@pytest.mark.slow
def test_no_completed_trial_is_lost_to_kill_9_at_random_moments(tmp_path):
    write(tmp_path / "objectives.py", OBJECTIVES)
    write(
        tmp_path / "s.toml",
        f'name = "s"\nobjective = "objectives.py:fast"\ntrials = 400\nseed = 3\n{SPACE_TOML}',
    )
    db, rng, reported = tmp_path / "hpo.db", random.Random(0), set()
    command = ("run", "s.toml")
    for _ in range(6):
        process = hpo_process(*command, cwd=tmp_path)
        # kill after a random number of trials (not of seconds: a loaded machine
        # may take a second just to start), at a random instant within a trial
        lines = [process.stdout.readline() for _ in range(rng.randint(1, 40))]
        time.sleep(rng.uniform(0.0, 0.01))
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=10)
        # a line is printed only after its trial's transaction committed
        reported |= {
            int(line.split()[1])
            for line in [*lines, *out.splitlines()]
            if line.startswith("trial ") and " COMPLETE " in line
        }
        assert integrity(db) == "ok"
        command = ("resume", "s")
    stored = {t.number: t for t in hpo.load_study("s", str(db)).trials}
    assert reported and all(stored[n].state == TrialState.COMPLETE for n in reported)

    out, err = hpo_process("resume", "s", cwd=tmp_path).communicate(timeout=120)
    trials = hpo.load_study("s", str(db)).trials
    assert [t.number for t in trials] == list(range(len(trials)))
    assert sum(t.counts_toward_budget for t in trials) == 400, err
    assert all(t.state != TrialState.RUNNING for t in trials)
    assert integrity(db) == "ok"


# -- regressions found in review -------------------------------------------------------------


def test_objective_options_are_stored_and_used_on_resume(workdir):
    write(workdir / "opt.py", "def f(trial, scale):\n    return trial.params['x'] * scale\n")
    write(
        workdir / "s.toml",
        f'name = "s"\ntrials = 2\nseed = 0\n[objective]\n'
        f'name = "opt.py:f"\nscale = 1000\n{SPACE_TOML}',
    )
    assert invoke("run", "s.toml").exit_code == 0
    assert invoke("resume", "s", "--trials", "4").exit_code == 0
    trials = hpo.load_study("s", "hpo.db").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all(t.value == pytest.approx(t.params["x"] * 1000) for t in trials)


@pytest.mark.parametrize(
    ("sampler", "fragment"),
    [
        ('[sampler]\nname = "grid"\nvalues = { nope = [1, 2] }', "unknown parameter 'nope'"),
        ('[sampler]\nname = "grid"\npoints = 2000', "more than 1,000,000"),
    ],
)
def test_a_bad_grid_creates_nothing(workdir, sampler, fragment):
    write(workdir / "g.toml", f'objective = "hartmann6"\n{sampler}')
    assert_user_error(invoke("run", "g.toml"), fragment)
    assert not (workdir / "hpo.db").exists()


def test_grid_on_an_objective_without_a_space_creates_nothing(workdir):
    write(workdir / "opt.py", "def f(trial):\n    return trial.suggest_float('x', 0, 1)\n")
    write(workdir / "g.toml", 'objective = "opt.py:f"\nsampler = "grid"')
    assert_user_error(invoke("run", "g.toml"), "needs a declared space")
    assert not (workdir / "hpo.db").exists()


def test_a_failed_resume_changes_nothing(workdir):
    write(workdir / "opt.py", "def f(trial):\n    return trial.suggest_float('x', 0, 1)\n")
    write(workdir / "s.toml", 'name = "s"\nobjective = "opt.py:f"\ntrials = 2')
    invoke("run", "s.toml")
    assert_user_error(
        invoke("resume", "s", "--sampler", "grid", "--trials", "5"), "needs a declared space"
    )
    assert_user_error(invoke("resume", "s", "--trials", "1"), "cannot be below")
    study = hpo.load_study("s", "hpo.db")
    assert (study.info.sampler, study.budget) == ("tpe", 2)


def test_a_builtin_objective_needs_its_parameter_names(workdir):
    write(
        workdir / "s.toml",
        'objective = "branin"\ntrials = 2\n[[space]]\nname = "x"\n'
        'type = "float"\nlow = 0.0\nhigh = 1.0',
    )
    assert_user_error(invoke("run", "s.toml"), "lacks ['x1', 'x2']")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "/"],
        ["trials", "x", "--state", "bogus"],
        ["run", "x.toml", "--trials", "0"],
        ["nosuch"],
        ["show"],
    ],
)
def test_usage_errors_are_one_line(workdir, args):
    assert_user_error(invoke(*args), "--help")


def test_an_objective_calling_sys_exit_on_import(workdir):
    write(workdir / "opt.py", "import sys\nsys.exit(3)\n")
    write(workdir / "s.toml", 'objective = "opt.py:f"\ntrials = 2')
    assert_user_error(invoke("run", "s.toml"), "SystemExit")


def test_options_that_are_not_plain_values(workdir):
    write(workdir / "s.toml", 'trials = 2\n[objective]\nname = "branin"\nwhen = 2024-01-01')
    assert_user_error(invoke("run", "s.toml"), "options must be plain values")


def test_json_output_has_no_nan(workdir):
    write(
        workdir / "opt.py",
        "def f(trial):\n    trial.report(float('nan'), 0)\n    return trial.params['x']\n",
    )
    write(workdir / "s.toml", f'name = "s"\nobjective = "opt.py:f"\ntrials = 1\n{SPACE_TOML}')
    invoke("run", "s.toml")
    shown = json.loads(invoke("show", "s", "0", "--json").stdout)
    assert shown["intermediate"] == {"0": None}
    assert "NaN" not in invoke("export", "s", "--format", "json").stdout


def test_hints_name_the_storage_when_it_is_not_the_default(workdir):
    write(workdir / "demo.toml", STUDY)
    result = invoke("run", "demo.toml", "--trials", "2", "--storage", "my runs.db")
    assert "--storage 'sqlite:///my runs.db'" in result.stdout
    assert "--storage" not in invoke("run", "demo.toml", "--trials", "2").stdout


def test_running_twice_suggests_resume(workdir):
    write(workdir / "demo.toml", STUDY)
    invoke("run", "demo.toml", "--trials", "2")
    assert_user_error(invoke("run", "demo.toml"), "hpo resume demo", "--name")


def test_the_live_line_redraws_at_most_every_refresh_and_shows_the_last_text_on_close():
    from hpo.display import LiveLine

    stream = io.StringIO()
    line = LiveLine(stream, refresh_s=3600.0)
    line.show(lambda: "trial 1/3")
    line.show(lambda: "trial 2/3")  # within the refresh time: not drawn yet
    assert stream.getvalue() == "\rtrial 1/3\033[K"
    line.show(lambda: "trial 3/3")
    line.close()
    assert stream.getvalue() == "\rtrial 1/3\033[K\rtrial 3/3\033[K\n"
    line.show(lambda: "a study's last trial", now=True)
    assert stream.getvalue().endswith("\ra study's last trial\033[K")


def test_a_live_line_that_showed_nothing_writes_nothing():
    from hpo.display import LiveLine

    stream = io.StringIO()
    LiveLine(stream).close()
    assert stream.getvalue() == ""


def test_progress_of_a_batch_of_trials_shows_the_best_as_each_one_finished(tmp_path):
    """Worker processes' trials reach the progress in batches, all stored already:
    each line still shows the best up to its own trial, not the batch's."""
    from hpo.display import Progress

    values = iter([3.0, 1.0, 2.0, 0.5])
    study = hpo.create_study(
        "batch", str(tmp_path / "hpo.db"), [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]
    )
    study.optimize(lambda trial: next(values), n_trials=4)
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    for trial in study.trials:  # reported after all four are stored
        progress(study, trial)
    bests = [line.split("best ")[1].split("  [")[0] for line in stream.getvalue().splitlines()]
    assert bests == ["3 (#0)", "1 (#1)", "1 (#1)", "0.5 (#3)"]
