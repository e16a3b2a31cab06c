"""Objectives: the built-in synthetic ones against the benchmark definitions, and
user objectives loaded by module:function or path/file.py:function."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO, bench_problems

from hpo.errors import ObjectiveError
from hpo.objectives import BUILTIN, Objective, load_objective, objective_names, synthetic
from hpo.space import Space

USER_PREFIXES = ("objtest_", "hpo_objective_")  # modules these tests create


BENCH = bench_problems()


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch):
    """Restore sys.path afterwards (loading inserts folders) and drop user modules.

    '' is left out so that a module in the current directory is found only
    because load_objective puts the current directory on the path.
    """
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(USER_PREFIXES):
            del sys.modules[name]


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    importlib.invalidate_caches()
    return path


def fake_trial(params: dict) -> SimpleNamespace:
    """What an objective reads from a Trial here: its params."""
    return SimpleNamespace(params=params)


OBJECTIVE_SOURCE = """\
    import math

    VALUE = 3


    def objective(trial, scale=1.0, *, shift=0.0):
        return scale * trial.params["x"] + shift


    def anything(trial, **options):
        return sum(options.values())
"""


# -- built-in synthetic objectives -----------------------------------------------------


def test_builtin_registry_holds_the_benchmark_problems_and_the_networks():
    assert list(synthetic.PROBLEMS) == list(BENCH)
    networks = ["mnist_mlp", "boston", "sofm", "mnist_tradeoff", "boston_tradeoff"]
    assert list(BUILTIN) == [*BENCH, *networks]
    assert objective_names() == list(BUILTIN)


@pytest.mark.parametrize("name", list(BENCH))
def test_builtin_has_the_benchmark_space_and_optimum(name):
    objective = load_objective(name)
    assert isinstance(objective, Objective)
    assert objective.ref == name
    assert objective.space == BENCH[name]["space"]
    assert synthetic.PROBLEMS[name]["space"] == BENCH[name]["space"]
    assert objective.optimum == BENCH[name]["optimum"]
    assert synthetic.PROBLEMS[name]["optimum"] == BENCH[name]["optimum"]
    assert objective.direction == "minimize"


@pytest.mark.parametrize("name", list(BENCH))
def test_builtin_equals_the_benchmark_function(name):
    space = Space.from_spec(BENCH[name]["space"])
    reference = BENCH[name]["fn"]
    objective = load_objective(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    values = set()
    for _ in range(200):
        params = space.decode(rng.random(len(space)))
        expected = reference(dict(params))
        assert synthetic.PROBLEMS[name]["fn"](dict(params)) == pytest.approx(expected, rel=1e-12)
        assert objective.fn(fake_trial(dict(params))) == pytest.approx(expected, rel=1e-12)
        values.add(round(expected, 9))
    assert len(values) > 150  # the points really differ


KNOWN_OPTIMA = [
    ("branin", {"x1": math.pi, "x2": 2.275}),
    ("branin", {"x1": -math.pi, "x2": 12.275}),
    ("branin", {"x1": 9.42478, "x2": 2.475}),
    (
        "hartmann6",
        {
            "x0": 0.20169,
            "x1": 0.150011,
            "x2": 0.476874,
            "x3": 0.275332,
            "x4": 0.311652,
            "x5": 0.6573,
        },
    ),
    ("rosenbrock4", {"x0": 1.0, "x1": 1.0, "x2": 1.0, "x3": 1.0}),
    (
        "mixed_nn",
        {"lr": 1e-2, "batch_size": 64, "activation": "relu", "units": 450, "dropout": 0.2},
    ),
    ("conditional_nn", {"lr": 10**-2.5, "layers": "two", "units_2_1": 300, "units_2_2": 120}),
]


@pytest.mark.parametrize(
    ("name", "point"), KNOWN_OPTIMA, ids=[f"{n}-{i}" for i, (n, _) in enumerate(KNOWN_OPTIMA)]
)
def test_builtin_reaches_its_stated_optimum(name, point):
    space = Space.from_spec(BENCH[name]["space"])
    assert space.validate(point) == point  # the optimum lies in the space
    value = load_objective(name).fn(fake_trial(point))
    assert value == pytest.approx(BENCH[name]["optimum"], abs=1e-5)
    assert value == pytest.approx(BENCH[name]["fn"](point), rel=1e-12)


@pytest.mark.parametrize("name", list(BENCH))
def test_builtin_optimum_is_a_lower_bound(name):
    space = Space.from_spec(BENCH[name]["space"])
    rng = np.random.default_rng(0)
    objective = load_objective(name)
    for _ in range(200):
        params = space.decode(rng.random(len(space)))
        assert objective.fn(fake_trial(params)) >= BENCH[name]["optimum"] - 1e-5


def test_builtin_rejects_options():
    with pytest.raises(
        ObjectiveError, match="objective 'branin' has no option 'x'; its options: none"
    ):
        load_objective("branin", {"x": 1})


def test_unknown_builtin_suggests_a_close_name():
    with pytest.raises(ObjectiveError) as info:
        load_objective("brannin")
    message = str(info.value)
    assert "unknown objective 'brannin' (did you mean 'branin'?)" in message
    assert "built-in: branin, hartmann6" in message
    assert "module:function" in message


@pytest.mark.parametrize("ref", ["", "   ", None, 3])
def test_objective_reference_must_be_a_non_empty_string(ref):
    with pytest.raises(ObjectiveError, match="objective must be a name or module:function"):
        load_objective(ref)


# -- user objectives ---------------------------------------------------------------------


def test_module_reference_is_imported_from_the_current_directory(tmp_path, monkeypatch):
    write(tmp_path / "objtest_cwd.py", OBJECTIVE_SOURCE)
    monkeypatch.chdir(tmp_path)
    objective = load_objective("objtest_cwd:objective")
    assert objective.ref == "objtest_cwd:objective"  # a module reference is kept as given
    assert objective.fn(fake_trial({"x": 2.0})) == 2.0
    assert objective.space is None
    assert objective.direction is None
    assert objective.optimum is None


def test_module_reference_in_a_package(tmp_path, monkeypatch):
    write(tmp_path / "objtest_pkg" / "__init__.py", "")
    write(tmp_path / "objtest_pkg" / "funcs.py", OBJECTIVE_SOURCE)
    monkeypatch.chdir(tmp_path)
    objective = load_objective("objtest_pkg.funcs:objective", {"shift": 1.0})
    assert objective.fn(fake_trial({"x": 2.0})) == 3.0


def test_file_reference_relative_to_base_dir(tmp_path, monkeypatch):
    write(tmp_path / "studies" / "code" / "obj.py", OBJECTIVE_SOURCE)
    monkeypatch.chdir(REPO)  # not where the file is
    objective = load_objective("code/obj.py:objective", base_dir=tmp_path / "studies")
    assert objective.fn(fake_trial({"x": 4.0})) == 4.0
    expected = f"{(tmp_path / 'studies' / 'code' / 'obj.py').resolve()}:objective"
    assert objective.ref == expected


def test_file_reference_without_base_dir_is_relative_to_the_current_directory(
    tmp_path, monkeypatch
):
    write(tmp_path / "obj.py", OBJECTIVE_SOURCE)
    monkeypatch.chdir(tmp_path)
    objective = load_objective("obj.py:objective")
    assert objective.ref == f"{(tmp_path / 'obj.py').resolve()}:objective"
    assert objective.fn(fake_trial({"x": 5.0})) == 5.0


def test_file_reference_absolute(tmp_path):
    path = write(tmp_path / "abs_obj.py", OBJECTIVE_SOURCE)
    objective = load_objective(f"{path}:objective", base_dir=tmp_path / "elsewhere")
    assert objective.ref == f"{path.resolve()}:objective"
    assert objective.fn(fake_trial({"x": -1.5})) == -1.5


def test_stored_file_reference_loads_again_from_anywhere(tmp_path, monkeypatch):
    write(tmp_path / "a" / "obj.py", OBJECTIVE_SOURCE)
    first = load_objective("a/obj.py:objective", base_dir=tmp_path)
    monkeypatch.chdir(REPO)
    again = load_objective(first.ref, base_dir=REPO)
    assert again.ref == first.ref
    assert again.fn(fake_trial({"x": 1.0})) == 1.0


def test_file_can_import_its_neighbours(tmp_path):
    write(tmp_path / "objtest_helper.py", "def double(v):\n    return 2 * v\n")
    write(
        tmp_path / "uses_helper.py",
        """\
        from objtest_helper import double


        def objective(trial):
            return double(trial.params["x"])
    """,
    )
    objective = load_objective("uses_helper.py:objective", base_dir=tmp_path)
    assert objective.fn(fake_trial({"x": 3.0})) == 6.0


def test_options_are_passed_as_keyword_arguments(tmp_path):
    write(tmp_path / "obj.py", OBJECTIVE_SOURCE)
    objective = load_objective("obj.py:objective", {"scale": 2.0, "shift": 1.0}, base_dir=tmp_path)
    assert objective.fn(fake_trial({"x": 3.0})) == 7.0
    anything = load_objective("obj.py:anything", {"a": 1, "b": 2}, base_dir=tmp_path)
    assert anything.fn(fake_trial({})) == 3  # **options accepts any name


def test_unknown_option_is_named(tmp_path):
    write(tmp_path / "obj.py", OBJECTIVE_SOURCE)
    with pytest.raises(ObjectiveError) as info:
        load_objective("obj.py:objective", {"scal": 2.0}, base_dir=tmp_path)
    message = str(info.value)
    assert "objective 'obj.py:objective' has no option 'scal'" in message
    assert "(did you mean 'scale'?)" in message
    assert "its options: scale, shift" in message


def test_an_option_cannot_take_the_place_of_the_trial(tmp_path):
    write(tmp_path / "obj.py", OBJECTIVE_SOURCE)
    with pytest.raises(ObjectiveError, match="no option 'trial'"):
        load_objective("obj.py:objective", {"trial": 1}, base_dir=tmp_path)


# -- errors: one line, naming the problem --------------------------------------------------


IMPORT_ERROR_SOURCE = """\
    import os

    import objtest_missing_dependency


    def objective(trial):
        return 0.0
"""
SYNTAX_ERROR_SOURCE = """\
    x = 1

    def objective(trial)
        return 0.0
"""
RAISING_SOURCE = """\
    x = 1
    raise RuntimeError("boom at import\\nsecond line of the message")
"""
FROM_IMPORT_SOURCE = """\
    from os import objtest_no_such_name
"""

ERROR_CASES = [
    pytest.param(
        None,
        "missing.py:objective",
        ["objective file", "missing.py", "not found"],
        id="missing-file",
    ),
    pytest.param(
        None, "sub/missing.py:objective", ["not found", "missing.py"], id="missing-file-in-folder"
    ),
    pytest.param(
        None,
        "objtest_nomodule:objective",
        ["cannot import objective module 'objtest_nomodule'", "no module named 'objtest_nomodule'"],
        id="missing-module",
    ),
    pytest.param(
        None,
        "objtest_nopkg.sub:objective",
        ["no module named 'objtest_nopkg'"],
        id="missing-package",
    ),
    pytest.param(
        OBJECTIVE_SOURCE,
        "user.py:objectiv",
        ["has no function 'objectiv'", "(did you mean 'objective'?)"],
        id="missing-function-file",
    ),
    pytest.param(
        OBJECTIVE_SOURCE,
        "objtest_user:objectiv",
        ["objtest_user has no function 'objectiv'", "(did you mean 'objective'?)"],
        id="missing-function-module",
    ),
    pytest.param(
        OBJECTIVE_SOURCE, "user.py:VALUE", ["has a non-callable 'VALUE'"], id="non-callable-file"
    ),
    pytest.param(
        OBJECTIVE_SOURCE,
        "objtest_user:VALUE",
        ["objtest_user has a non-callable 'VALUE'"],
        id="non-callable-module",
    ),
    pytest.param(
        IMPORT_ERROR_SOURCE,
        "user.py:objective",
        [
            "error while importing",
            "user.py",
            "ModuleNotFoundError",
            "objtest_missing_dependency",
            "line 3",
        ],
        id="import-error-file",
    ),
    pytest.param(
        IMPORT_ERROR_SOURCE,
        "objtest_user:objective",
        [
            "error while importing objtest_user",
            "ModuleNotFoundError",
            "objtest_missing_dependency",
            "objtest_user.py, line 3",
        ],
        id="import-error-module",
    ),
    pytest.param(
        FROM_IMPORT_SOURCE,
        "user.py:objective",
        ["ImportError", "objtest_no_such_name", "line 1"],
        id="from-import-file",
    ),
    pytest.param(
        SYNTAX_ERROR_SOURCE,
        "user.py:objective",
        ["error while importing", "SyntaxError", "line 3"],
        id="syntax-error-file",
    ),
    pytest.param(
        SYNTAX_ERROR_SOURCE,
        "objtest_user:objective",
        ["error while importing objtest_user", "SyntaxError", "line 3"],
        id="syntax-error-module",
    ),
    pytest.param(
        RAISING_SOURCE,
        "user.py:objective",
        ["error while importing", "RuntimeError: boom at import", "user.py, line 2"],
        id="raises-at-import-file",
    ),
    pytest.param(
        RAISING_SOURCE,
        "objtest_user:objective",
        ["RuntimeError: boom at import", "objtest_user.py, line 2"],
        id="raises-at-import-module",
    ),
    pytest.param(
        None,
        ":objective",
        [
            "objective reference ':objective' must look like "
            "module:function or path/to/file.py:function"
        ],
        id="no-location",
    ),
    pytest.param(
        None, "file.py:", ["objective reference 'file.py:' must look like"], id="no-function"
    ),
    pytest.param(
        None, "module:", ["objective reference 'module:' must look like"], id="module-no-function"
    ),
]


@pytest.mark.parametrize(("source", "ref", "fragments"), ERROR_CASES)
def test_load_errors_are_one_line_naming_the_problem(tmp_path, monkeypatch, source, ref, fragments):
    if source is not None:
        write(tmp_path / "user.py", source)
        write(tmp_path / "objtest_user.py", source)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ObjectiveError) as info:
        load_objective(ref, base_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert "second line" not in message


def test_a_failed_file_import_leaves_no_module_behind(tmp_path):
    write(tmp_path / "broken.py", RAISING_SOURCE)
    with pytest.raises(ObjectiveError):
        load_objective("broken.py:objective", base_dir=tmp_path)
    assert not [name for name in sys.modules if name.startswith("hpo_objective_broken")]


def test_a_fixed_file_loads_after_a_failure(tmp_path):
    write(tmp_path / "obj.py", SYNTAX_ERROR_SOURCE)
    with pytest.raises(ObjectiveError, match="SyntaxError"):
        load_objective("obj.py:objective", base_dir=tmp_path)
    write(tmp_path / "obj.py", OBJECTIVE_SOURCE)
    assert load_objective("obj.py:objective", base_dir=tmp_path).fn(fake_trial({"x": 1.0})) == 1.0


def test_import_error_in_a_module_names_the_users_line(tmp_path, monkeypatch):
    source = 'import json\n\njson.loads("{")\n'
    write(tmp_path / "objtest_badjson.py", source)
    write(tmp_path / "badjson.py", source)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ObjectiveError) as as_file:
        load_objective("badjson.py:objective")
    assert "badjson.py, line 3" in str(as_file.value)  # the file form gets it right
    with pytest.raises(ObjectiveError) as as_module:
        load_objective("objtest_badjson:objective")
    assert "objtest_badjson.py, line 3" in str(as_module.value)


def test_syntax_error_location_is_given_once(tmp_path):
    write(tmp_path / "user.py", SYNTAX_ERROR_SOURCE)
    with pytest.raises(ObjectiveError) as info:
        load_objective("user.py:objective", base_dir=tmp_path)
    assert str(info.value).count("line 3") == 1
