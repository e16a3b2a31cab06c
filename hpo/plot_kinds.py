"""The figures hpo draws, by name (what `hpo plot --kind` takes): here, away from
matplotlib and NumPy, so that the command's help does not load them."""

from __future__ import annotations

ONE_OBJECTIVE_KINDS = ("history", "importance", "slice", "parallel")  # of a value per trial
SEVERAL_OBJECTIVES_KINDS = ("pareto", "hypervolume")
STUDY_KINDS = (*ONE_OBJECTIVE_KINDS, "intermediate", *SEVERAL_OBJECTIVES_KINDS)
COMPARISON_KINDS = ("best-so-far", "ask-time", "fronts")  # fronts: objectives of several values


def study_kinds(n_objectives: int) -> tuple[str, ...]:
    """The kinds a study of `n_objectives` objectives can draw."""
    if n_objectives == 1:
        return (*ONE_OBJECTIVE_KINDS, "intermediate")
    return (*SEVERAL_OBJECTIVES_KINDS, "intermediate")


def refusal(kind: str, name: str, n_objectives: int) -> str | None:
    """Why study `name` cannot draw `kind` (None: it can), naming the kinds it can."""
    if kind in study_kinds(n_objectives):
        return None
    kinds = ", ".join(study_kinds(n_objectives))
    if n_objectives == 1:
        return (
            f"the {kind} figure is of a study of several objectives; study {name!r} has "
            f"one (its kinds: {kinds})"
        )
    return (
        f"the {kind} figure draws one value per trial; study {name!r} has {n_objectives} "
        f"objectives (its kinds: {kinds})"
    )
