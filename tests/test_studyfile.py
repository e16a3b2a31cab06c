"""Study files: TOML and JSON parse into the same StudyConfig; every invalid
field is a StudyFileError that names the file and the problem."""

from __future__ import annotations

import json
import textwrap
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from hpo.errors import StudyFileError
from hpo.space import Space
from hpo.studyfile import KEYS, StudyConfig, config_from_dict, load_study_file

FULL_TOML = """\
    name = "full-study"
    direction = "maximize"
    trials = 25
    timeout = 60.5
    seed = 7
    storage = "sqlite:///studies.db"

    [objective]
    name = "code/objective.py:score"
    scale = 2.5
    tags = ["a", "b"]

    [sampler]
    name = "grid"
    points = 4
    shuffle = false

    [[space]]
    name = "lr"
    type = "float"
    low = 1e-4
    high = 1.0
    log = true

    [[space]]
    name = "activation"
    type = "categorical"
    choices = ["relu", "tanh"]

    [[space]]
    name = "layers"
    type = "branch"

    [[space.choices.one]]
    name = "units"
    type = "int"
    low = 50
    high = 500

    [[space.choices.two]]
    name = "units"
    type = "int"
    low = 50
    high = 500
    step = 50

    [[space.choices.two]]
    name = "units_2"
    type = "int"
    low = 10
    high = 100
"""

FULL_SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
    {"name": "activation", "type": "categorical", "choices": ["relu", "tanh"]},
    {
        "name": "layers",
        "type": "branch",
        "choices": {
            "one": [{"name": "units", "type": "int", "low": 50, "high": 500}],
            "two": [
                {"name": "units", "type": "int", "low": 50, "high": 500, "step": 50},
                {"name": "units_2", "type": "int", "low": 10, "high": 100},
            ],
        },
    },
]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def expected_full(base_dir: Path, name: str = "full-study") -> StudyConfig:
    return StudyConfig(
        name=name,
        objective="code/objective.py:score",
        objective_options={"scale": 2.5, "tags": ["a", "b"]},
        direction="maximize",
        space=FULL_SPACE,
        sampler="grid",
        sampler_options={"points": 4, "shuffle": False},
        trials=25,
        timeout=60.5,
        seed=7,
        storage="sqlite:///studies.db",
        base_dir=base_dir,
    )


# -- parsing --------------------------------------------------------------------------------


def test_full_toml_file(tmp_path):
    config = load_study_file(write(tmp_path / "full.toml", FULL_TOML))
    assert config == expected_full(tmp_path)
    assert config.base_dir == tmp_path
    space = Space.from_spec(config.space)  # the branch arrived as a mapping of lists
    assert [dim.param.name for dim in space.dims] == [
        "lr",
        "activation",
        "layers",
        "units",
        "units",
        "units_2",
    ]


def test_full_json_file_gives_the_same_config(tmp_path):
    data = tomllib.loads(textwrap.dedent(FULL_TOML))
    path = tmp_path / "full.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    assert load_study_file(path) == expected_full(tmp_path)
    assert load_study_file(path) == load_study_file(write(tmp_path / "full.toml", FULL_TOML))


def test_path_may_be_a_string(tmp_path):
    path = write(tmp_path / "full.toml", FULL_TOML)
    assert load_study_file(str(path)) == load_study_file(path)


def test_minimal_file_takes_the_defaults(tmp_path):
    config = load_study_file(write(tmp_path / "quick.toml", 'objective = "branin"\n'))
    assert config == StudyConfig(name="quick", objective="branin", base_dir=tmp_path)
    assert (
        config.objective_options,
        config.direction,
        config.space,
        config.sampler,
        config.sampler_options,
        config.trials,
        config.timeout,
        config.seed,
        config.storage,
    ) == ({}, "minimize", None, "tpe", {}, None, None, None, None)


def test_name_defaults_to_the_file_stem(tmp_path):
    toml = load_study_file(write(tmp_path / "branin-random.toml", 'objective = "branin"\n'))
    assert toml.name == "branin-random"
    as_json = load_study_file(write(tmp_path / "my.study.json", '{"objective": "branin"}'))
    assert as_json.name == "my.study"
    named = load_study_file(write(tmp_path / "file.toml", 'name = "given"\nobjective = "x"\n'))
    assert named.name == "given"


def test_objective_and_sampler_as_plain_names(tmp_path):
    config = load_study_file(
        write(
            tmp_path / "s.toml",
            """\
        objective = "my_pkg.module:fn"
        sampler = "grid"
        trials = 1
        seed = 0
    """,
        )
    )
    assert (config.objective, config.objective_options) == ("my_pkg.module:fn", {})
    assert (config.sampler, config.sampler_options) == ("grid", {})
    assert (config.trials, config.seed) == (1, 0)


def test_config_from_dict_without_a_file():
    config = config_from_dict({"objective": "branin", "trials": 3}, "inline", "dflt")
    assert config == StudyConfig(name="dflt", objective="branin", trials=3)
    with pytest.raises(StudyFileError, match="inline: study name must be a non-empty string"):
        config_from_dict({"objective": "branin"}, "inline")


# -- overrides ------------------------------------------------------------------------------


def test_with_overrides_replaces_given_fields_and_keeps_none_ones(tmp_path):
    config = load_study_file(write(tmp_path / "full.toml", FULL_TOML))
    overridden = config.with_overrides(
        name="other", trials=5, timeout=None, seed=None, storage="sqlite:///x.db", direction=None
    )
    assert overridden == replace(config, name="other", trials=5, storage="sqlite:///x.db")
    assert overridden.timeout == 60.5
    assert overridden.seed == 7
    assert overridden.direction == "maximize"
    assert config.trials == 25  # the original is unchanged
    assert config.with_overrides() == config
    assert config.with_overrides(seed=0).seed == 0


def test_with_overrides_same_sampler_keeps_its_options(tmp_path):
    config = load_study_file(write(tmp_path / "full.toml", FULL_TOML))
    assert config.with_overrides(sampler="grid").sampler_options == {"points": 4, "shuffle": False}


def test_with_overrides_other_sampler_drops_the_files_options(tmp_path):
    config = load_study_file(write(tmp_path / "full.toml", FULL_TOML))
    switched = config.with_overrides(sampler="random")
    assert (switched.sampler, switched.sampler_options) == ("random", {})
    given = config.with_overrides(sampler="random", sampler_options={"a": 1})
    assert given.sampler_options == {"a": 1}
    assert config.sampler_options == {"points": 4, "shuffle": False}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"trials": 0}, "command line: trials must be a positive integer, got 0"),
        ({"timeout": -1.0}, "command line: timeout must be a positive number"),
        ({"seed": -2}, "command line: seed must be an integer in [0, 2**63), got -2"),
        ({"direction": "up"}, "command line: direction must be 'minimize' or 'maximize'"),
        ({"name": ""}, "command line: study name must be a non-empty string"),
    ],
)
def test_with_overrides_validates(tmp_path, overrides, fragment):
    config = load_study_file(write(tmp_path / "full.toml", FULL_TOML))
    with pytest.raises(StudyFileError) as info:
        config.with_overrides(**overrides)
    assert fragment in str(info.value)


# -- errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(StudyFileError) as info:
        load_study_file(path)
    assert str(info.value) == f"study file {str(path)!r} not found"


def test_a_folder_is_not_a_study_file(tmp_path):
    with pytest.raises(StudyFileError, match="cannot read study file"):
        load_study_file(tmp_path)


def test_malformed_toml(tmp_path):
    path = write(tmp_path / "bad.toml", 'objective = "branin"\ntrials = \n')
    with pytest.raises(StudyFileError) as info:
        load_study_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message
    assert "\n" not in message


def test_malformed_json(tmp_path):
    path = write(tmp_path / "bad.json", '{"objective": "branin",}')
    with pytest.raises(StudyFileError, match="invalid JSON"):
        load_study_file(path)


def test_json_must_be_an_object(tmp_path):
    path = write(tmp_path / "list.json", '["branin"]')
    with pytest.raises(StudyFileError, match="a study file must be a table of keys"):
        load_study_file(path)


BASE = 'objective = "branin"\n'

INVALID_FILES = [
    pytest.param(
        BASE + "trails = 5\n",
        ["unknown key 'trails'", "(did you mean 'trials'?)", "allowed: name, objective"],
        id="unknown-key",
    ),
    pytest.param(
        BASE + "[samplers]\nname = 'grid'\n",
        ["unknown key 'samplers'", "(did you mean 'sampler'?)"],
        id="unknown-table",
    ),
    pytest.param(
        "objective = 5\n",
        ["'objective' must be a name or a table with a 'name' key"],
        id="objective-not-a-name",
    ),
    pytest.param(
        "[objective]\nscale = 2\n",
        ["'objective' must be a name or a table"],
        id="objective-table-without-name",
    ),
    pytest.param(
        BASE + 'direction = "maximise"\n',
        ["direction must be 'minimize' or 'maximize', got 'maximise'"],
        id="bad-direction",
    ),
    pytest.param(BASE + "direction = 1\n", ["direction must be"], id="direction-not-a-string"),
    pytest.param(
        BASE + "trials = 0\n", ["trials must be a positive integer, got 0"], id="trials-zero"
    ),
    pytest.param(
        BASE + "trials = -3\n", ["trials must be a positive integer, got -3"], id="trials-negative"
    ),
    pytest.param(
        BASE + "trials = 2.5\n", ["trials must be a positive integer, got 2.5"], id="trials-float"
    ),
    pytest.param(
        BASE + "trials = 10.0\n",
        ["trials must be a positive integer, got 10.0"],
        id="trials-integral-float",
    ),
    pytest.param(
        BASE + "trials = true\n", ["trials must be a positive integer, got True"], id="trials-bool"
    ),
    pytest.param(
        BASE + 'trials = "10"\n',
        ["trials must be a positive integer, got '10'"],
        id="trials-string",
    ),
    pytest.param(
        BASE + "timeout = 0\n", ["timeout must be a positive number of seconds"], id="timeout-zero"
    ),
    pytest.param(
        BASE + "timeout = -5.0\n",
        ["timeout must be a positive number", "-5.0"],
        id="timeout-negative",
    ),
    pytest.param(BASE + "timeout = inf\n", ["timeout must be a positive number"], id="timeout-inf"),
    pytest.param(BASE + "timeout = nan\n", ["timeout must be a positive number"], id="timeout-nan"),
    pytest.param(
        BASE + "timeout = true\n", ["timeout must be a positive number"], id="timeout-bool"
    ),
    pytest.param(
        BASE + "seed = -1\n", ["seed must be an integer in [0, 2**63), got -1"], id="seed-negative"
    ),
    pytest.param(
        BASE + "seed = 1.5\n", ["seed must be an integer in [0, 2**63), got 1.5"], id="seed-float"
    ),
    pytest.param(
        BASE + "seed = true\n", ["seed must be an integer in [0, 2**63), got True"], id="seed-true"
    ),
    pytest.param(
        BASE + 'space = "x"\n', ["'space' must be a list of parameters"], id="space-not-a-list"
    ),
    pytest.param(
        BASE + '[space]\nname = "x"\n',
        ["'space' must be a list of parameters", "[[space]]"],
        id="space-a-single-table",
    ),
    pytest.param(
        BASE + "[sampler]\npoints = 3\n",
        ["'sampler' must be a name or a table with a 'name' key"],
        id="sampler-table-without-name",
    ),
    pytest.param(
        BASE + "sampler = 3\n", ["'sampler' must be a name or a table"], id="sampler-not-a-name"
    ),
    pytest.param(BASE + 'name = ""\n', ["study name must be a non-empty string"], id="empty-name"),
    pytest.param(
        BASE + "name = 3\n", ["study name must be a non-empty string"], id="name-not-a-string"
    ),
    pytest.param(
        BASE + "storage = 5\n", ["storage must be a URL or path string"], id="storage-not-a-string"
    ),
]


@pytest.mark.parametrize(("text", "fragments"), INVALID_FILES)
def test_invalid_file_names_the_file_and_the_problem(tmp_path, text, fragments):
    path = write(tmp_path / "study.toml", text)
    with pytest.raises(StudyFileError) as info:
        load_study_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("study.toml", BASE + "seed = false\n"),
        ("study.toml", BASE + "seed = 0.0\n"),
        ("study.json", '{"objective": "branin", "seed": 9223372036854775808}'),
    ],
    ids=["seed-false", "seed-zero-float", "seed-2**63"],
)
def test_seed_that_create_study_refuses_is_rejected(tmp_path, filename, text):
    with pytest.raises(StudyFileError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        load_study_file(write(tmp_path / filename, text))


def test_every_allowed_key_is_accepted(tmp_path):
    assert set(KEYS) == {
        "name",
        "objective",
        "direction",
        "directions",
        "objective_names",
        "space",
        "sampler",
        "pruner",
        "trials",
        "timeout",
        "seed",
        "storage",
    }
    config = load_study_file(write(tmp_path / "full.toml", FULL_TOML))
    several_only = ("directions", "objective_names")
    assert all(getattr(config, key) is not None for key in KEYS if key not in several_only)
    several = FULL_TOML.replace(
        'direction = "maximize"',
        'directions = ["minimize", "maximize"]\nobjective_names = ["error", "size"]',
    )
    two = load_study_file(write(tmp_path / "two.toml", several))
    assert two.directions == ["minimize", "maximize"] and two.objective_names == ["error", "size"]
    for bad in ('["error"]', '["a", "a"]', '"error"'):
        with pytest.raises(StudyFileError, match="objective_names must be 2 distinct"):
            load_study_file(write(tmp_path / "bad.toml", several.replace('["error", "size"]', bad)))
    both = several.replace("directions =", 'direction = "minimize"\ndirections =')
    with pytest.raises(StudyFileError, match="not both"):
        load_study_file(write(tmp_path / "both.toml", both))


def test_a_file_without_objective_is_for_create_not_run(tmp_path):
    """A study for ask and tell has no objective: `hpo create` makes it, `hpo run`
    says what is missing and where to go."""
    import hpo

    path = write(
        tmp_path / "asktell.toml",
        'trials = 5\n[[space]]\nname = "x"\ntype = "float"\nlow = 0.0\nhigh = 1.0\n',
    )
    with pytest.raises(StudyFileError, match=r"'objective' is missing.*hpo create"):
        hpo.run(path, storage=str(tmp_path / "hpo.db"))
    study = hpo.create(path, storage=str(tmp_path / "hpo.db"))
    assert study.info.objective is None and study.budget == 5 and study.trials == []
