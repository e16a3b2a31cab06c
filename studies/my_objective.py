"""An example of a user objective: a function of an hpo.Trial returning a number.

Run it with `hpo run studies/custom.toml`. Parameters declared in the study
file are in `trial.params`; `trial.suggest_*` (as in Optuna) adds new ones.
"""

from __future__ import annotations

import math

import hpo


def ridge_error(trial: hpo.Trial, noise: float = 0.0) -> float:
    alpha = trial.params["alpha"]  # declared in custom.toml
    degree = trial.params["degree"]
    fit_intercept = trial.suggest_categorical("fit_intercept", [True, False])  # define-by-run
    error = (math.log10(alpha) + 2) ** 2 + 0.1 * (degree - 3) ** 2
    if not fit_intercept:
        error += 0.5
    trial.set_user_attr("complexity", degree / alpha)
    return error + noise
