"""The figures hpo draws, by name (what `hpo plot --kind` takes): here, away from
matplotlib and NumPy, so that the command's help does not load them."""

from __future__ import annotations

STUDY_KINDS = ("history", "importance", "slice", "parallel", "intermediate")
COMPARISON_KINDS = ("best-so-far", "ask-time")
