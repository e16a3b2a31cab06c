"""`hpo import-optuna`: real Optuna databases, written by the installed Optuna, into hpo.

Each source (an RDB database on SQLite, PostgreSQL and MySQL when their URLs
are set, and a journal file) holds a study with every kind of trial:
completed, pruned by a pruner, failed, running (asked and never told) and
enqueued, with conditional parameters, int/log/step/categorical
distributions, user attributes and intermediate values. The import must
equal what Optuna reads back, and `hpo resume` (a real process) must go on
with TPE to an exact budget.
"""

from __future__ import annotations

import functools
import inspect
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.optuna_io import OPTUNA_ATTR, RUNNING_ERROR, spec_of
from hpo.records import SAMPLE_INDEX, TrialState
from hpo.schema import metadata as hpo_metadata
from hpo.storage import Storage
from tests.conftest import drop_hpo_tables, server_url

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)  # (its INFO line per trial)

# the study's running trial asked for x in another range: warned where a test looks for it
pytestmark = pytest.mark.filterwarnings("ignore:study 'quadratic'. parameter 'x' changed")
HPO = str(Path(sys.executable).parent / "hpo")
STUDY = "quadratic"

OBJECTIVE = '''
import optuna


def objective(trial):
    """Written for Optuna: conditional parameters, every kind of distribution."""
    kind = trial.suggest_categorical("kind", ["lin", "quad"])
    x = trial.suggest_float("x", -4.0, 4.0)
    if kind == "quad":
        value = trial.suggest_float("c", 0.01, 10.0, log=True) * x * x
    else:
        value = abs(x) + trial.suggest_int("n", 1, 9, step=2)
    value += trial.suggest_float("s", 0.0, 1.0, step=0.25)
    value += 0.01 * trial.suggest_int("k", 1, 64, log=True)
    trial.set_user_attr("kind_seen", kind)
    if x > 3.5:
        raise ValueError("x too large")
    for step in range(3):
        trial.report(value + 2 - step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value
'''
# points that make sure of each outcome: complete, pruned (above the pruner's 8.0), failed
FORCED = [
    {"kind": "lin", "x": 0.5, "n": 1, "s": 0.0, "k": 1},
    {"kind": "lin", "x": -3.0, "n": 9, "s": 0.5, "k": 2},
    {"kind": "quad", "x": 3.9, "c": 1.0, "s": 0.25, "k": 4},
]
ENQUEUED = {"kind": "quad", "x": 0.25}


@pytest.fixture(scope="module")
def objective_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("objective") / "objective.py"
    path.write_text(OBJECTIVE)
    return path


def load_objective(path: Path) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["objective"]


def write_optuna_study(storage: Any, objective_file: Path, name: str = STUDY) -> None:
    """Run Optuna: forced outcomes, a few TPE trials, one asked and never told (with
    another range for x), and one enqueued."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=3),
        pruner=optuna.pruners.ThresholdPruner(upper=8.0),
    )
    study.set_user_attr("owner", "tests")
    for point in FORCED:
        study.enqueue_trial(point)
    study.optimize(load_objective(objective_file), n_trials=7, catch=(ValueError,))
    running = study.ask()
    running.suggest_float("x", -8.0, 8.0)  # another range than the objective's
    running.report(1.0, 0)
    study.enqueue_trial(ENQUEUED, user_attrs={"by": "hand"})


@functools.cache
def optuna_tables() -> frozenset[str]:
    """The tables Optuna creates, as a new SQLite database shows them."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/optuna.db"
        optuna.storages.RDBStorage(url).engine.dispose()
        engine = sa.create_engine(url)
        try:
            return frozenset(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()


def drop_optuna_tables(url: str) -> None:
    """Only Optuna's tables (hpo's are left to drop_hpo_tables)."""
    engine = sa.create_engine(url)
    try:
        present = set(sa.inspect(engine).get_table_names()) & optuna_tables()
        reflected = sa.MetaData()
        reflected.reflect(engine, only=sorted(present))
        reflected.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres", "mysql", "journal"])
def source(
    request: pytest.FixtureRequest, tmp_path: Path, objective_file: Path
) -> Iterator[tuple[str, str]]:
    """(Optuna source, hpo storage) holding the study STUDY. On a server both are the
    same database: Optuna's tables and hpo's live side by side."""
    kind = request.param
    if kind == "sqlite":
        url, target = f"sqlite:///{tmp_path / 'optuna.db'}", str(tmp_path / "hpo.db")
        write_optuna_study(url, objective_file)
    elif kind == "journal":
        url, target = str(tmp_path / "optuna.log"), str(tmp_path / "hpo.db")
        backend = optuna.storages.journal.JournalFileBackend(url)
        write_optuna_study(optuna.storages.JournalStorage(backend), objective_file)
    else:
        url = target = server_url(kind)
        drop_hpo_tables(url)
        drop_optuna_tables(url)
        write_optuna_study(url, objective_file)
    yield url, target
    if kind in ("postgres", "mysql"):
        drop_hpo_tables(url)
        drop_optuna_tables(url)


def optuna_trials(url: str) -> list[Any]:
    storage: Any = url
    if "://" not in url:
        backend = optuna.storages.journal.JournalFileBackend(url)
        storage = optuna.storages.JournalStorage(backend)
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_user_error(result: Any, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hpo: error: ")
    for fragment in fragments:
        assert fragment in line, line
    return line


EXPECTED_STATES = {
    "COMPLETE": TrialState.COMPLETE,
    "PRUNED": TrialState.PRUNED,
    "FAIL": TrialState.FAIL,
    "WAITING": TrialState.WAITING,
    "RUNNING": TrialState.FAIL,
}


def assert_same_as_optuna(study: hpo.Study, expected: list[Any]) -> None:
    """Each Optuna trial, by number, against the hpo trial it became."""
    trials = study.trials
    assert {t.state.name for t in expected} == set(EXPECTED_STATES)  # every kind is there
    for source in expected:
        trial = trials[source.number]
        assert trial.system_attrs[OPTUNA_ATTR]["number"] == source.number
        assert trial.state == EXPECTED_STATES[source.state.name]
        fixed = source.system_attrs.get("fixed_params", {})
        assert trial.params == {**fixed, **source.params}
        assert trial.intermediate == source.intermediate_values
        assert trial.user_attrs == source.user_attrs
        if source.state.name in ("COMPLETE", "PRUNED"):  # pruned: the last value, as Optuna
            assert trial.value == source.value
        if source.datetime_start is not None:
            assert trial.started_at == pytest.approx(source.datetime_start.timestamp())
        if source.state.name in ("COMPLETE", "PRUNED", "FAIL"):
            assert trial.finished_at == pytest.approx(source.datetime_complete.timestamp())
        if source.state.name == "FAIL":
            assert trial.error == "failed in Optuna"
        if source.state.name == "RUNNING":  # FAIL, and its point queued again
            assert trial.error == RUNNING_ERROR
            retry = trials[trial.system_attrs["requeued_as"]]
            assert retry.state == TrialState.WAITING
            assert retry.params == source.params and retry.system_attrs["retry_of"] == trial.number
    first: dict[str, Any] = {}
    for source in expected:
        for name, distribution in source.distributions.items():
            first.setdefault(name, spec_of(name, distribution))
    assert {n: p.to_spec() for n, p in study.suggested_params.items()} == first


def test_import_then_resume_with_tpe_to_an_exact_budget(
    source: tuple[str, str], objective_file: Path
) -> None:
    url, target = source
    expected = optuna_trials(url)
    total = len(expected) + 6
    with pytest.warns(UserWarning, match="parameter 'x' changed its range"):  # the running one
        result = invoke(
            "import-optuna", url, "--storage", target,
            "--objective", f"{objective_file}:objective",
            "--sampler", "tpe", "--trials", str(total), "--json",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["studies"]
    states = [EXPECTED_STATES[t.state.name].value for t in expected] + ["WAITING"]  # + retry
    assert summary["counts"] == {state: states.count(state) for state in summary["counts"]}
    assert summary["requeued"] == 1 and summary["counted"] == len(expected) - 2
    study = hpo.load_study(STUDY, target)
    assert study.direction == "minimize" and study.user_attrs["owner"] == "tests"
    assert study.info.objective == f"{objective_file.resolve()}:objective"
    assert_same_as_optuna(study, expected)
    with Storage(target) as store:
        assert store.budget_taken(study.info.study_id) == study.n_counted == len(expected) - 2

    resumed = subprocess.run(
        [HPO, "resume", STUDY, "--storage", target, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    trials = hpo.load_study(STUDY, target).trials
    assert sum(t.counts_toward_budget for t in trials) == total
    assert not [t for t in trials if not t.state.is_finished]  # the queued points ran
    enqueued = next(t for t in trials if t.user_attrs.get("by") == "hand")
    assert enqueued.state != TrialState.WAITING and enqueued.params["x"] == ENQUEUED["x"]
    new = trials[len(expected) + 1 :]  # after the retry of the running trial
    assert len(new) >= 4 and all(SAMPLE_INDEX in t.system_attrs for t in new)
    assert hpo.load_study(STUDY, target).info.sampler == "tpe"
    with Storage(target) as store:
        assert store.budget_taken(study.info.study_id) == total

    # and back into the Optuna storage it came from, beside the original
    hpo.export_optuna(hpo.load_study(STUDY, target), url, name="from-hpo")
    storage = journal(Path(url)) if "://" not in url else url
    back = optuna.load_study(study_name="from-hpo", storage=storage).get_trials()
    # (every trial has finished: the states are the same words)
    assert [(t.state.name, t.value, t.params) for t in back] == [
        (t.state.value, t.value, t.params) for t in trials
    ]


def test_optuna_tables_do_not_collide_with_hpo_tables() -> None:
    """One database can hold both (the server tests above import within one)."""
    tables = optuna_tables()
    assert {"studies", "trials", "version_info"} <= tables
    assert not tables & set(hpo_metadata.tables)
    assert not [t for t in tables if t.startswith("hpo_")]


# -- the mapping of distributions ------------------------------------------------------


@pytest.mark.parametrize(
    ("distribution", "spec"),
    [
        (optuna.distributions.FloatDistribution(-1.0, 2.0), {"type": "float", "log": False}),
        (
            optuna.distributions.FloatDistribution(1e-5, 0.1, log=True),
            {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
        ),
        (
            optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25),
            {"type": "float", "step": 0.25},
        ),
        (optuna.distributions.IntDistribution(1, 9, step=2), {"type": "int", "step": 2}),
        (optuna.distributions.IntDistribution(1, 64, log=True), {"type": "int", "log": True}),
        (
            optuna.distributions.CategoricalDistribution(["a", 1, 2.5, None, True]),
            {"type": "categorical", "choices": ["a", 1, 2.5, None, True]},
        ),
    ],
)
def test_distributions_become_hpo_specs(distribution: Any, spec: dict[str, Any]) -> None:
    made = spec_of("p", distribution)
    assert made is not None
    assert made.items() >= spec.items()
    assert hpo.Space.from_spec([made]).params[0].to_spec() == made  # a valid hpo spec
    if spec["type"] == "int" and "step" not in spec:
        assert "step" not in made  # hpo's default step of 1


def test_a_range_of_one_value_is_no_parameter() -> None:
    assert spec_of("p", optuna.distributions.FloatDistribution(1.0, 1.0)) is None
    assert spec_of("p", optuna.distributions.IntDistribution(3, 3)) is None


# -- choosing studies, names, defaults ----------------------------------------------------


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory, objective_file: Path) -> str:
    """An Optuna SQLite file with the studies 'quadratic' and 'other' (read only)."""
    path = tmp_path_factory.mktemp("optuna") / "two.db"
    write_optuna_study(f"sqlite:///{path}", objective_file)
    other = optuna.create_study(study_name="other", storage=f"sqlite:///{path}")
    other.optimize(lambda t: t.suggest_int("m", 0, 3), n_trials=2)
    return str(path)


def test_several_studies_need_a_choice(two_studies: str, tmp_path: Path) -> None:
    target = str(tmp_path / "hpo.db")
    assert_user_error(
        invoke("import-optuna", two_studies, "--storage", target),
        "holds 2 Optuna studies (quadratic, other)",
        "--study NAME",
    )
    assert_user_error(
        invoke("import-optuna", two_studies, "--all", "--name", "x", "--storage", target),
        "--name renames one study",
    )
    assert not Path(target).exists()  # checked before the hpo database is opened
    result = invoke("import-optuna", two_studies, "--all", "--storage", target)
    assert result.exit_code == 0, result.output
    assert sorted(s.info.name for s in hpo.studies(target)) == ["other", "quadratic"]
    assert "continue from Python" in result.stdout  # no objective stored: how to go on


def test_a_study_is_imported_under_another_name_with_the_default_sampler(
    two_studies: str, tmp_path: Path
) -> None:
    target = str(tmp_path / "hpo.db")
    imported = hpo.import_optuna(two_studies, "other", target, name="renamed", seed=7)
    assert [(s.name, s.optuna_name, s.counts) for s in imported] == [
        ("renamed", "other", {"COMPLETE": 2})
    ]
    study = hpo.load_study("renamed", target)
    default = inspect.signature(hpo.create_study).parameters["sampler"].default
    assert study.info.sampler == default and study.seed == 7 and study.budget is None
    assert study.info.user_attrs["imported_from_optuna"]["study"] == "other"


def test_an_unknown_study_name_suggests_the_close_one(two_studies: str, tmp_path: Path) -> None:
    assert_user_error(
        invoke("import-optuna", two_studies, "--study", "quadratik", "--storage", "x.db"),
        "no Optuna study named 'quadratik'",
        "(did you mean 'quadratic'?)",
    )


def test_an_existing_hpo_study_name_writes_nothing(two_studies: str, tmp_path: Path) -> None:
    target = str(tmp_path / "hpo.db")
    hpo.import_optuna(two_studies, "other", target)
    result = invoke("import-optuna", two_studies, "--all", "--storage", target)
    assert_user_error(result, "a study named 'other' already exists", "--name")
    # checked before anything was written: 'quadratic' was not imported either
    assert [s.info.name for s in hpo.studies(target)] == ["other"]


def test_a_budget_below_the_imported_trials_is_refused(two_studies: str, tmp_path: Path) -> None:
    result = invoke(
        "import-optuna", two_studies, "--study", "quadratic", "--trials", "3",
        "--storage", str(tmp_path / "hpo.db"),
    )  # fmt: skip
    assert_user_error(result, "--trials is the total")


# -- what is refused ------------------------------------------------------------------


def test_a_multi_objective_study_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url, directions=["minimize"] * 2)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    target = tmp_path / "hpo.db"
    assert_user_error(
        invoke("import-optuna", url, "--storage", str(target)),
        "has 2 objectives",
        "issue 21",
    )
    assert not target.exists()


def test_files_that_are_not_optuna_storages(tmp_path: Path) -> None:
    hpo_db = tmp_path / "hpo.db"
    hpo.create_study("mine", str(hpo_db))
    before = hpo_db.read_bytes()
    assert_user_error(invoke("import-optuna", str(hpo_db)), "is not an Optuna database")
    assert hpo_db.read_bytes() == before  # Optuna's tables were not created in it
    text = tmp_path / "data.csv"
    text.write_text("a,b\n1,2\n3,4\n")
    assert_user_error(
        invoke("import-optuna", str(text)), "neither an Optuna database nor an Optuna journal"
    )
    assert_user_error(invoke("import-optuna", str(tmp_path / "none.db")), "no such file")
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert_user_error(invoke("import-optuna", missing), "no such file")
    assert not (tmp_path / "none.db").exists()  # not created by looking


BLOCKED = """
import sys
sys.modules["optuna"] = None  # as if Optuna were not installed: `import optuna` fails
from hpo.__main__ import main
sys.argv = ["hpo", "import-optuna", {path!r}, "--storage", {target!r}]
main()
"""


def test_without_optuna_one_error_says_how_to_install_it(tmp_path: Path) -> None:
    code = BLOCKED.format(path=str(tmp_path / "optuna.db"), target=str(tmp_path / "hpo.db"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "needs Optuna" in line and "pip install optuna" in line
    assert not (tmp_path / "hpo.db").exists()


# -- hpo export --format optuna: the other way ----------------------------------------


def journal(path: Path) -> Any:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def test_an_imported_study_exported_back_equals_optuna_s(two_studies: str, tmp_path: Path) -> None:
    target = str(tmp_path / "hpo.db")
    hpo.import_optuna(two_studies, STUDY, target)
    log = tmp_path / "back.log"
    result = invoke("export", STUDY, "--storage", target, "--format", "optuna", "-o", str(log))
    assert result.exit_code == 0, result.output
    original = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{two_studies}").get_trials()
    back = optuna.load_study(study_name=STUDY, storage=journal(log))
    exported = back.get_trials()
    assert len(exported) == len(original) + 1  # and the re-queued point of the running one
    for source, trial in zip(original, exported, strict=False):
        running = source.state.name == "RUNNING"
        assert trial.state.name == ("FAIL" if running else source.state.name)
        assert (trial.params, trial.user_attrs) == (source.params, source.user_attrs)
        assert trial.intermediate_values == source.intermediate_values
        assert trial.value == source.value
        hpo_attrs = trial.system_attrs.pop("hpo")
        assert trial.system_attrs == source.system_attrs  # Optuna's own attributes are back
        assert hpo_attrs["number"] == source.number
        if source.datetime_complete is not None:
            assert trial.datetime_complete == source.datetime_complete
    assert exported[-1].state.name == "WAITING"
    assert exported[-1].system_attrs["fixed_params"] == original[-2].params  # the running one's
    assert back.user_attrs == {"owner": "tests"}
    back.optimize(lambda t: t.suggest_float("x", -4.0, 4.0) ** 2, n_trials=2)  # Optuna goes on
    assert back.get_trials()[-3].params == exported[-1].system_attrs["fixed_params"]


BRANCHED = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    {
        "name": "model",
        "type": "branch",
        "choices": {
            "mlp": [{"name": "units", "type": "int", "low": 8, "high": 64, "step": 8}],
            "tree": [{"name": "depth", "type": "categorical", "choices": [2, 4, None]}],
        },
    },
]


def test_a_conditional_hpo_space_becomes_per_trial_distributions(tmp_path: Path) -> None:
    study = hpo.create_study("branched", str(tmp_path / "hpo.db"), BRANCHED, seed=3)
    study.optimize(lambda t: t.params["lr"] + t.suggest_float("extra", 0.0, 1.0), n_trials=8)
    study.enqueue({"model": "tree"})
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    hpo.export_optuna(study, url, name="copy")
    d = optuna.distributions
    exported = optuna.load_study(study_name="copy", storage=url).get_trials()
    assert [t.params for t in exported[:8]] == [t.params for t in study.trials[:8]]
    for trial in exported[:8]:
        assert trial.distributions["lr"] == d.FloatDistribution(1e-4, 1e-1, log=True)
        assert trial.distributions["model"] == d.CategoricalDistribution(["mlp", "tree"])
        assert trial.distributions["extra"] == d.FloatDistribution(0.0, 1.0)
        if trial.params["model"] == "mlp":
            assert trial.distributions["units"] == d.IntDistribution(8, 64, step=8)
        else:
            assert trial.distributions["depth"] == d.CategoricalDistribution([2, 4, None])
    assert {t.params["model"] for t in exported[:8]} == {"mlp", "tree"}
    assert exported[8].state.name == "WAITING"
    assert exported[8].system_attrs["fixed_params"] == {"model": "tree"}


def test_export_refuses_an_existing_optuna_study(tmp_path: Path) -> None:
    study = hpo.create_study("s", str(tmp_path / "hpo.db"), BRANCHED)
    study.optimize(lambda t: t.params["lr"], n_trials=2)
    log = tmp_path / "optuna.log"
    optuna.create_study(study_name="s", storage=journal(log)).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=1
    )
    result = invoke(
        "export", "s", "--storage", str(tmp_path / "hpo.db"), "--format", "optuna", "-o", str(log)
    )
    assert_user_error(result, "an Optuna study named 's' already exists")
    assert len(optuna.load_study(study_name="s", storage=journal(log)).trials) == 1
    assert_user_error(
        invoke("export", "s", "--storage", str(tmp_path / "hpo.db"), "--format", "optuna"),
        "needs -o",
    )
