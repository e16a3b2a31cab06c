"""The live dashboard of `hpo serve`: its page at `/`, its assets, and the read endpoints
its charts need beyond the service's (under /api/dashboard), all guarded by the
service's tokens (`hpo.server.require_read` / `require_write`).

The page is one static HTML file with its script and styles, shipped in the
package (hpo/static); the charting library, uPlot, is vendored there from the
npm registry (hpo/static/vendor/rebuild.sh) so nothing is fetched at run time.
The page holds no data: it asks the JSON endpoints with the bearer token the
user typed (kept in the tab's sessionStorage) or that `hpo dashboard` put in
the URL fragment, which browsers never send to a server.

Every chart's data is shaped here by `hpo.dashboard_data` from the trials the
server's Study keeps in memory, in sizes that do not grow with the study; the
trial table is a page read by the database (`Storage.page`) unless it is
filtered or sorted by a parameter, which the stored JSON cannot index.

Pages are sent with a strict Content-Security-Policy: scripts, styles and
connections to this origin only, no inline script, no frames, no forms posting
elsewhere. The page inserts text from the database with textContent only.
"""

from __future__ import annotations

import math
import threading
import time
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hpo import dashboard_data as shape
from hpo.errors import StudyConfigError, StudyNotFoundError
from hpo.records import FrozenTrial, TrialState
from hpo.server import require_read, require_write
from hpo.storage import PAGE_SORTS
from hpo.study import Study

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSETS = {  # the files the page may load: name -> content type
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "study.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": "text/css; charset=utf-8",
    "vendor/swagger-ui-bundle.js": "text/javascript; charset=utf-8",  # /docs
    "vendor/swagger-ui.css": "text/css; charset=utf-8",
}
PAGE_LIMIT = 500  # the most rows one page of the table holds
IMPORTANCE_TRIALS = 10_000  # PED-ANOVA judges at most this many (an even spread)
IMPORTANCE_EVERY_S = 10.0  # a live study's importance is recomputed at most this often

Read = Depends(require_read)
Write = Depends(require_write)
router = APIRouter()


def _asset(name: str) -> bytes:
    return resources.files("hpo").joinpath("static", name).read_bytes()


def _secured(body: bytes, media_type: str, cache: bool = False) -> Response:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "max-age=300" if cache else "no-store",
    }
    return Response(body, media_type=media_type, headers=headers)


# -- the page and its assets (no data in them: no token needed) --------------------------


@router.get("/", include_in_schema=False)
def index() -> Response:
    return _secured(_asset("index.html"), "text/html; charset=utf-8")


@router.get("/dashboard/{name:path}", include_in_schema=False)
def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    return _secured(_asset(name), ASSETS[name], cache=True)


# -- reads ------------------------------------------------------------------------------


def _study(request: Request, name: str) -> Study:
    study: Study = request.app.state.studies.get(name)
    return study


def _access(request: Request) -> str:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    return request.app.state.tokens.access(token).name.lower()


@router.get("/api/dashboard/access", dependencies=[Read])
def access(request: Request) -> dict[str, Any]:
    """What the page's token may do: "read" or "write" (it shows the actions or not)."""
    return {"access": _access(request)}


@router.get("/api/dashboard/studies", dependencies=[Read])
def studies(request: Request) -> dict[str, Any]:
    """Every study with its counts, budget, best value and last activity, and the
    comparison each belongs to."""
    from hpo.storage import comparison_of

    rows = []
    for summary in request.app.state.storage.list_studies():
        info = summary.info
        rows.append(
            {
                "name": info.name,
                "directions": list(info.directions),
                "sampler": info.sampler,
                "pruner": info.pruner,
                "counts": summary.counts,
                "budget": info.budget,
                "best_value": _clean(summary.best_value),
                "created_at": info.created_at,
                "last_activity": summary.last_activity,
                "comparison": comparison_of(info),
            }
        )
    return {"studies": rows}


@router.get("/api/dashboard/study", dependencies=[Read])
def study(request: Request, name: str) -> dict[str, Any]:
    """The study's definition and state, and a `version` that changes whenever a
    trial starts, reports, or finishes (the page refetches its charts then)."""
    from hpo.plots import study_params

    study = _study(request, name)
    trials = study.trials
    info = study.info
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    running = [t for t in trials if not t.state.is_finished]
    version: list[Any] = [len(trials), len(trials) - len(running)]
    version += [len(t.intermediate) for t in running]
    version += [info.sampler, info.pruner, info.budget]
    headline = _headline(request, study, trials, tuple(version[:2]))
    best = None if isinstance(headline, int) else headline  # (several: the front's size)
    front = headline if isinstance(headline, int) else None
    return {
        "name": info.name,
        "directions": list(info.directions),
        "sampler": info.sampler,
        "sampler_options": info.sampler_options,
        "pruner": info.pruner,
        "pruner_options": info.pruner_options,
        "budget": info.budget,
        "seed": info.seed,
        "objective": info.objective,
        "created_at": info.created_at,
        "counts": counts,
        "counted": study.n_counted,
        "best_number": None if best is None else best[0],
        "best_value": None if best is None else best[1],
        "front_size": front,
        "params": [shape.axis(p) for p in study_params(study)],
        "space": info.space,
        "comparison": info.user_attrs.get("comparison"),
        "version": ".".join(map(str, version)),
    }


def _headline(
    request: Request, study: Study, trials: list[FrozenTrial], key: tuple[Any, ...]
) -> Any:
    """The study's headline, kept per study until a trial finishes (the page asks every
    second; a pass over 100,000 trials is not free): with one objective (number, value)
    of the best trial, or None; with several, how many trials the Pareto front holds
    (feasible trials only)."""
    kept: dict[str, tuple[tuple[Any, ...], Any]] = _state(request, "dashboard_headline")
    hit = kept.get(study.name)
    if hit is None or hit[0] != key:
        hit = kept[study.name] = (key, _best(study, trials))
    return hit[1]


def _best(study: Study, trials: list[FrozenTrial]) -> Any:
    if study.n_objectives > 1:
        return len(study.best_trials)
    done = shape.Completed(trials)
    if not len(done):
        return None
    at = int((study.info.directions[0].sign * done.values).argmin())
    return int(done.numbers[at]), float(done.values[at])


@router.get("/api/dashboard/charts", dependencies=[Read])
def charts(request: Request, name: str) -> dict[str, Any]:
    """The data of every chart of the study page, each bounded in size."""
    from hpo.plots import study_params

    study = _study(request, name)
    trials = study.trials
    direction = study.info.directions[0]
    done = shape.Completed(trials)
    last = trials[-1].number if trials else None
    return _clean(
        {
            "objective": "value" if study.n_objectives == 1 else "first objective",
            "history": shape.history(done, direction, last),
            "points": shape.points(study_params(study), done, direction),
            "distribution": shape.distribution(done),
            "curves": shape.curves(trials),
            "timeline": shape.timeline(trials, time.time()),
            "front": (
                shape.front(trials, study.info.directions) if study.n_objectives > 1 else None
            ),
            "objectives": [study.info.objective_label(i) for i in range(study.n_objectives)],
        },
        digits=7,
    )


_importance_lock = threading.Lock()


@router.get("/api/dashboard/importance", dependencies=[Read])
def importance(request: Request, name: str) -> dict[str, Any]:
    """PED-ANOVA importances (hpo.importance); for a study that keeps changing,
    recomputed at most every IMPORTANCE_EVERY_S seconds."""
    from hpo.importance import ped_anova
    from hpo.plots import study_params

    study = _study(request, name)
    cache: dict[str, tuple[float, int, dict[str, Any]]] = _state(request, "dashboard_importance")
    trials = study.trials
    done = sum(t.state == TrialState.COMPLETE for t in trials)
    with _importance_lock:
        kept = cache.get(name)
        fresh = kept is not None and (kept[1] == done or time.time() - kept[0] < IMPORTANCE_EVERY_S)
        if kept is not None and fresh:
            return kept[2]
        judged = trials
        if done > IMPORTANCE_TRIALS:  # an even spread through the study, in number order
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            judged = complete[:: math.ceil(done / IMPORTANCE_TRIALS)]
        scores = ped_anova(study_params(study), judged, study.info.directions[0])
        result = {"completed": done, "judged": min(done, len(judged)), "importance": scores}
        cache[name] = (time.time(), done, result)
        return result


def _state(request: Request, name: str) -> Any:
    """A dict the dashboard keeps on the app between requests (made on first use)."""
    if not hasattr(request.app.state, name):
        setattr(request.app.state, name, {})
    return getattr(request.app.state, name)


@router.get("/api/dashboard/trials", dependencies=[Read])
def trials(
    request: Request,
    name: str,
    state: Annotated[list[TrialState] | None, Query()] = None,
    sort: str = "number",
    descending: bool = False,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    param: str | None = None,
    op: Literal["=", "!=", "<", "<=", ">", ">="] = "=",
    value: str | None = None,
) -> dict[str, Any]:
    """A page of the trial table. Sorting by number, value or duration with no
    parameter filter is done by the database; by a parameter ("param:NAME"), or
    filtered on one, in memory over the study's trials."""
    from hpo.plots import study_params

    study = _study(request, name)
    by_param = sort.startswith("param:") or (param is not None and value not in (None, ""))
    if not by_param:
        page = study.trials_page(state or (), sort, descending, limit, offset)
        rows, total = page.trials, page.total
    else:
        params = {p.name: p for p in study_params(study)}
        chosen = study.trials
        if param is not None and value not in (None, ""):
            if param not in params:
                raise StudyConfigError(f"no parameter {param!r} in study {name!r}")
            try:
                chosen = shape.filtered(chosen, params[param], op, value or "")
            except ValueError as exc:
                raise StudyConfigError(f"filter {param} {op} {value!r}: {exc}") from None
        if sort.startswith("param:") and sort.removeprefix("param:") not in params:
            raise StudyConfigError(f"no parameter {sort.removeprefix('param:')!r} to sort by")
        if not sort.startswith("param:") and sort not in PAGE_SORTS:
            raise StudyConfigError(f"sort must be one of {', '.join(PAGE_SORTS)} or param:NAME")
        rows, total = shape.page(
            chosen, study.info.directions[0], state or [], sort, descending, limit, offset
        )
        stored = {t.number: t for t in _stored(study, [t.number for t in rows])}
        rows = [stored.get(t.number, t) for t in rows]  # (notes added since it was loaded)
    return _clean({"total": total, "offset": offset, "trials": [_row(t) for t in rows]})


def _row(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": str(trial.state),
        "value": trial.value,
        "values": trial.objective_values,
        "params": trial.params,
        "duration": trial.duration,
        "started_at": trial.started_at,
        "worker": trial.worker,
        "note": trial.user_attrs.get("note"),
    }


@router.get("/api/dashboard/trial", dependencies=[Read])
def trial(request: Request, name: str, number: int) -> dict[str, Any]:
    """One trial as stored now (read afresh: a note added to a finished trial shows)."""
    stored = _stored(_study(request, name), [number])
    if not stored:
        from hpo.errors import TrialNotFoundError

        raise TrialNotFoundError(f"study {name!r} has no trial {number}")
    return _clean(stored[0].to_dict())


def _stored(study: Study, numbers: list[int]) -> list[FrozenTrial]:
    """These trials as stored now, in one query. (The Study the server keeps refreshes
    only unfinished trials; a note added to a finished one is in the database only.)"""
    if not numbers:
        return []
    # trials numbered above `after` or listed: an `after` above every number lists only these
    return study.storage.load_trials(study.info.study_id, after=2**62, numbers=numbers)


@router.get("/api/dashboard/comparison", dependencies=[Read])
def comparison(request: Request, name: str) -> dict[str, Any]:
    """A comparison's result table (as `hpo compare` prints it) and its best-so-far
    curves per sampler: the median and the quartiles over seeds."""
    from hpo.comparison import find_comparison, summarize
    from hpo.display import COMPARISON_NOTE, comparison_heading, comparison_rows

    found = find_comparison(name, request.app.state.storage)
    if found is None:
        raise StudyNotFoundError(f"no comparison named {name!r}")
    summary = summarize(found)
    objectives = []
    for objective, data in summary["objectives"].items():
        headers, rows = comparison_rows(data, summary["checkpoints"])
        objectives.append(
            {
                "name": objective,
                "heading": comparison_heading(objective, data),
                "direction": str(data["direction"]),
                "best_sampler": data["best_sampler"],
                "headers": headers,
                "rows": [[str(c) for c in row] for row in rows],
                "curves": _spread(found.curves[objective]),
                "ask_ms": {label: row["median_ask_ms"] for label, row in data["samplers"].items()},
            }
        )
    return _clean(
        {
            "name": name,
            "trials": summary["trials"],
            "note": COMPARISON_NOTE,
            "mean_rank": summary["mean_rank"],
            "objectives": objectives,
            "studies": sorted(
                s.info.name
                for s in request.app.state.storage.list_studies()
                if s.info.user_attrs.get("comparison") == name
            ),
        }
    )


def _spread(by_sampler: dict[str, Any], points: int = 400) -> dict[str, Any]:
    """Per sampler, the median and quartiles of best-so-far over seeds, (points,)."""
    import numpy as np

    out = {}
    for label, curves in by_sampler.items():
        best = np.array(curves.best)  # (seeds, budget)
        steps = np.unique(np.linspace(0, best.shape[1] - 1, points).round().astype(int))
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no trial yet
                q = np.nanpercentile(best[:, steps], [25, 50, 75], axis=0)
        out[label] = {"x": (steps + 1).tolist(), "low": q[0].tolist(), "median": q[1].tolist(),
                      "high": q[2].tolist()}  # fmt: skip
    return out


# -- actions (a read-write token) ---------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetBody(_Body):
    budget: int | None = Field(description="total trials; null: no limit")


class ChoiceBody(_Body):
    name: str = Field(max_length=200)
    options: dict[str, Any] = Field(default_factory=dict)


class NoteBody(_Body):
    note: str = Field(max_length=10_000)


@router.post("/api/dashboard/budget", dependencies=[Write])
def set_budget(request: Request, name: str, body: BudgetBody) -> dict[str, Any]:
    study = _study(request, name)
    study.set_budget(body.budget)
    return {"budget": study.budget}


@router.post("/api/dashboard/sampler", dependencies=[Write])
def set_sampler(request: Request, name: str, body: ChoiceBody) -> dict[str, Any]:
    study = _study(request, name)
    study.set_sampler(body.name, body.options)
    return {"sampler": study.info.sampler, "options": study.info.sampler_options}


@router.post("/api/dashboard/pruner", dependencies=[Write])
def set_pruner(request: Request, name: str, body: ChoiceBody) -> dict[str, Any]:
    study = _study(request, name)
    study.set_pruner(body.name, body.options)
    return {"pruner": study.info.pruner, "options": study.info.pruner_options}


@router.post("/api/dashboard/note", dependencies=[Write])
def note(request: Request, name: str, number: int, body: NoteBody) -> dict[str, Any]:
    """Add a note to a trial, running or finished: its user attribute "note"."""
    study = _study(request, name)
    stored = trial(request, name, number)
    attrs = {**stored["user_attrs"], "note": body.note}
    study.store_user_attrs(_trial_id(study, number), attrs)
    return {"number": number, "user_attrs": attrs}


def _trial_id(study: Study, number: int) -> int:
    return study.trial(number).trial_id


class EnqueueBody(_Body):
    params: dict[str, Any]


@router.post("/api/dashboard/enqueue", dependencies=[Write])
def enqueue(request: Request, name: str, body: EnqueueBody) -> dict[str, Any]:
    """Queue a point (validated against the space by Study.enqueue). The service's
    /api/studies/{name}/enqueue does the same; this one takes the name as a query
    parameter, so names with a slash (a comparison's studies) work too."""
    record = _study(request, name).enqueue(body.params)
    return _clean({"number": record.number, "params": record.params})


@router.delete("/api/dashboard/study", dependencies=[Write])
def delete(request: Request, name: str) -> dict[str, Any]:
    """Delete a study and its trials (the name as a query parameter, as above)."""
    request.app.state.studies.forget(name)
    request.app.state.storage.delete_study(name)
    return {"deleted": name}


@router.get("/api/dashboard/samplers", dependencies=[Read])
def choices() -> dict[str, Any]:
    """The sampler and pruner names the action forms offer."""
    from hpo.pruners import PRUNERS
    from hpo.samplers import SAMPLERS

    return {"samplers": sorted(SAMPLERS.names()), "pruners": sorted(PRUNERS.names())}


def _clean(data: Any, digits: int | None = None) -> Any:
    """JSON without NaN or infinity (which JSON cannot carry): None in their place;
    floats cut to `digits` significant digits if given (charts need no more)."""
    if isinstance(data, float):
        if not math.isfinite(data):
            return None
        return data if digits is None else float(f"{data:.{digits}g}")
    if isinstance(data, dict):
        return {k: _clean(v, digits) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_clean(v, digits) for v in data]
    return data
