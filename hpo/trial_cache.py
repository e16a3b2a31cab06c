"""A study's trials as this process last read them, refreshed incrementally.

What `Study` reads its trials through: the samplers' history, the budget's
count, the trials waiting or running. A refresh costs what changed since the
last one, not the size of the study.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hpo.records import SAMPLE_INDEX, FrozenTrial, TrialState
from hpo.space import Param
from hpo.storage import Storage


class TrialCache:
    """The study's trials as last read, indexed by number, refreshed incrementally.

    Finished trials never change, so a refresh reads only trials numbered
    above the last one seen plus those seen unfinished: its cost follows the
    trials that changed, not the size of the study.
    """

    def __init__(self, param_defs: Mapping[str, Param]) -> None:
        self.param_defs = param_defs  # the study's, attached to every record
        self.records: list[FrozenTrial] = []  # records[number]
        self.unfinished: set[int] = set()
        self.finished: list[int] = []  # numbers, in the order they were seen finished
        self.n_counted = 0  # trials that count toward the budget
        self.n_sampled = 0  # trials whose point came from the sampler

    def refresh(self, storage: Storage, study_id: int) -> None:
        if self.records:
            fresh = storage.load_trials(
                study_id, len(self.records) - 1, self.unfinished, self.param_defs
            )
        else:
            fresh = storage.load_trials(study_id, param_defs=self.param_defs)
        for record in fresh:  # by number: updates first, then new trials
            if record.number > len(self.records):
                break  # a number below it is not committed yet: read on, next time
            self.put(record)

    def put(self, record: FrozenTrial) -> FrozenTrial:
        """Add the next trial, or replace a known one with a newer record of it; the
        record as kept (with the study's parameter definitions attached)."""
        if record.param_defs is not self.param_defs:
            record = replace(record, param_defs=self.param_defs)
        number = record.number
        if number == len(self.records):
            self.records.append(record)
            old = None
        else:
            old = self.records[number]
            self.records[number] = record
        self.n_counted += record.counts_toward_budget - bool(old and old.counts_toward_budget)
        self.n_sampled += (SAMPLE_INDEX in record.system_attrs) - bool(
            old and SAMPLE_INDEX in old.system_attrs
        )
        if record.state.is_finished:
            if old is None or not old.state.is_finished:
                self.finished.append(number)
            self.unfinished.discard(number)
        else:
            self.unfinished.add(number)
        return record

    def in_state(self, state: TrialState) -> list[FrozenTrial]:
        return [self.records[n] for n in sorted(self.unfinished) if self.records[n].state == state]
