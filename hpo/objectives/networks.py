"""What the bundled network objectives share: reporting epochs to the trial, and the end.

An objective trains a network from `models` with a per-epoch callback made by
`reporter` (report the validation loss; stop when the trial should be
pruned), then `finish` stores what happened and picks the value.
"""

from __future__ import annotations

from typing import Any

from hpo.errors import TrialPruned
from hpo.trial import Trial
from models.training import History


def reporter(trial: Trial) -> Any:
    """A training callback: report each epoch's validation loss; stop if pruned."""

    def report(epoch: Any) -> bool:
        trial.report(epoch.valid_loss, epoch.epoch)
        return trial.should_prune()

    return report


def finish(trial: Trial, history: History, attrs: dict[str, Any], chance: float) -> float:
    """Store what training did; the value: the best epoch's validation loss (its training
    loss when training had no validation split).

    A network that diverged before any epoch could be kept scores `chance`,
    the loss of a model that learned nothing (uniform class probabilities;
    the training mean): the sampler learns to avoid its region, which it
    would not from a failed trial.
    """
    for key, value in {**attrs, "epochs": len(history.epochs), "stopped": history.stopped}.items():
        trial.set_user_attr(key, value)
    if history.stopped == "callback":
        raise TrialPruned
    if history.best_epoch is None:
        return chance
    best = history.epochs[history.best_epoch - 1]  # by the loss training monitored
    return float(best.valid_loss if best.valid_loss is not None else best.train_loss)
