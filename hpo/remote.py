"""A study on an hpo server (`hpo serve`), used like a local one: `hpo.connect`.

    import hpo
    study = hpo.connect("http://gpu-box:8000", "mnist", token=TOKEN)  # token: else $HPO_TOKEN
    study.optimize(objective)                  # runs here, stores there
    trial = study.ask(); study.tell(trial, train(**trial.params))
    server = hpo.connect("http://gpu-box:8000")  # no study name: create, list, delete
    server.create_study("mnist", space=[...], budget=100)

A machine that runs trials needs the server's URL and a token, not the
database's credentials. The live trial is `hpo.trial.Trial`, talking to the
server through the `TrialHost` surface: `suggest_*` of a new parameter asks
the server to sample it, `report` sends the value and gets the pruner's
decision back, which `should_prune` returns.

HTTP is the standard library's (http.client, `hpo.http_client`), on kept-alive
connections: a client needs nothing else. A dropped connection, a refused one
(the server restarting) or a 503 (its database briefly away) is retried with
backoff for `retry_seconds`. Every request is retried but enqueue (and create),
which is retried only when the request surely did not reach the server: a tell
sent twice is answered with the trial as told, never a second result or an
error. An ask whose answer
was lost leaves a trial nobody runs; its lease runs out and its point is
asked for again, as for a worker that died.

While a trial runs here, a background thread beats its heartbeat every
`heartbeat_interval` seconds; a client that vanishes stops beating, and after
`lease` seconds the server finds the trial lost and queues its point again.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, overload

from hpo import errors
from hpo.direction import Direction
from hpo.distributions import named
from hpo.errors import HpoError
from hpo.heartbeat import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, Heartbeat, worker_id
from hpo.http_client import RETRY_SECONDS, Http
from hpo.records import FrozenTrial, TrialPage, TrialState, value_of
from hpo.space import Param, Space, check_suggest_kind
from hpo.trial import Trial, as_objective_value, as_objective_values

PAGE = 1000  # trials per request when reading them all
POLL_INTERVAL_S = 0.5
log = logging.getLogger("hpo")


def _study_path(name: str, *parts: Any) -> str:
    return "/".join(["/api/studies", urllib.parse.quote(name, safe=""), *map(str, parts)])


# -- the server: its studies ---------------------------------------------------------------


class Server:
    """An hpo server's studies: create, load, list, delete (hpo.catalog's names)."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def studies(self) -> list[dict[str, Any]]:
        """Every study with its trial counts per state and best value."""
        answer: list[dict[str, Any]] = self.http.call("GET", "/api/studies")
        return answer

    def create_study(
        self,
        name: str,
        space: Sequence[Mapping[str, Any]] | None = None,
        direction: str | None = None,
        *,
        directions: Sequence[str] | None = None,
        objective_names: Sequence[str] | None = None,
        sampler: str = "tpe",
        sampler_options: Mapping[str, Any] | None = None,
        pruner: str = "none",
        pruner_options: Mapping[str, Any] | None = None,
        budget: int | None = None,
        seed: int | None = None,
        user_attrs: Mapping[str, Any] | None = None,
        load_if_exists: bool = False,
        objective: str | None = None,
        objective_options: Mapping[str, Any] | None = None,
    ) -> RemoteStudy:
        """A new study on the server. `objective`: a built-in objective's name, which
        workers (`hpo worker NAME --storage URL`) run; the server takes no reference to
        code."""
        body = {
            "name": name,
            "space": None if space is None else list(space),
            "direction": direction,
            "directions": None if directions is None else list(directions),
            "objective_names": None if objective_names is None else list(objective_names),
            "sampler": sampler,
            "sampler_options": dict(sampler_options or {}),
            "pruner": pruner,
            "pruner_options": dict(pruner_options or {}),
            "budget": budget,
            "seed": seed,
            "user_attrs": dict(user_attrs or {}),
            "load_if_exists": load_if_exists,
            "objective": objective,
            "objective_options": dict(objective_options or {}),
        }
        self.http.call("POST", "/api/studies", body, idempotent=load_if_exists)
        return self.load_study(name)

    def load_study(self, name: str) -> RemoteStudy:
        return RemoteStudy(self.http, self.http.call("GET", _study_path(name)))

    def delete_study(self, name: str) -> None:
        self.http.call("DELETE", _study_path(name))


@overload
def connect(
    url: str, study: None = None, *, token: str | None = None, retry_seconds: float = ...
) -> Server: ...


@overload
def connect(
    url: str, study: str, *, token: str | None = None, retry_seconds: float = ...
) -> RemoteStudy: ...


def connect(
    url: str,
    study: str | None = None,
    *,
    token: str | None = None,
    retry_seconds: float = RETRY_SECONDS,
) -> Server | RemoteStudy:
    """Study `study` on the hpo server at `url` (or, without a name, the server, to
    create, list and delete studies). `token`: a read-write or read-only token, by
    default $HPO_TOKEN. `retry_seconds`: how long to keep retrying a request while the
    server is out of reach."""
    server = Server(Http(url, token, retry_seconds=retry_seconds))
    return server if study is None else server.load_study(study)


def is_server_url(storage: object) -> bool:
    """Whether a storage argument names an hpo server rather than a database."""
    return isinstance(storage, str) and storage.lower().startswith(("http://", "https://"))


# -- a study on the server -----------------------------------------------------------------


class RemoteStudy:
    """A study on an hpo server, with the names of a local `hpo.Study`: ask, tell,
    report, heartbeat, optimize, trials, best_*, enqueue_trial. It is also the
    TrialHost of the trials it hands out."""

    def __init__(self, http: Http, data: Mapping[str, Any]) -> None:
        self._http = http
        self._data = dict(data)
        self.space = Space.from_spec(data["space"])
        self.heartbeat_interval = HEARTBEAT_INTERVAL_S
        self.lease = GRACE_PERIOD_S  # the server finds a trial lost after this without a beat
        self.poll_interval = POLL_INTERVAL_S
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._running: set[int] = set()  # numbers of the trials this process runs
        self._live: dict[int, Trial] = {}
        self._prune: dict[int, bool] = {}  # the pruner's last word on each running trial
        self._heartbeat: Heartbeat | None = None

    # -- what the study is -------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self._data["name"])

    @property
    def study_name(self) -> str:
        return self.name

    @property
    def directions(self) -> list[Direction]:
        return [Direction.parse(d) for d in self._data["directions"]]

    @property
    def direction(self) -> Direction:
        return self.directions[0]

    @property
    def n_objectives(self) -> int:
        return len(self._data["directions"])

    @property
    def budget(self) -> int | None:
        return self._data.get("budget")

    @property
    def seed(self) -> int:
        return int(self._data["seed"])

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._data.get("user_attrs") or {})

    @property
    def url(self) -> str:
        return self._http.url

    def __repr__(self) -> str:
        return f"RemoteStudy(name={self.name!r}, server={self._http.url!r})"

    def _path(self, *parts: Any) -> str:
        return _study_path(self.name, *parts)

    # -- results -----------------------------------------------------------------------

    @property
    def trials(self) -> list[FrozenTrial]:
        """Every trial, by number, read a page at a time."""
        out: list[FrozenTrial] = []
        while True:
            page = self.trials_page(limit=PAGE, offset=len(out))
            out += page.trials
            if not page.trials or len(out) >= page.total:
                return out

    def get_trials(
        self, deepcopy: bool = True, states: Collection[TrialState | str] | None = None
    ) -> list[FrozenTrial]:
        trials = self.trials
        if states is not None:
            wanted = {TrialState(str(s).upper()) for s in states}
            trials = [t for t in trials if t.state in wanted]
        return trials

    def trials_page(
        self,
        states: Collection[TrialState | str] = (),
        sort: str = "number",
        descending: bool = False,
        limit: int | None = 100,
        offset: int = 0,
    ) -> TrialPage:
        query: list[tuple[str, Any]] = [("state", str(s).upper()) for s in states]
        query += [("sort", sort), ("descending", str(descending).lower()), ("offset", offset)]
        query += [("limit", min(limit or PAGE, PAGE))]
        answer = self._http.call("GET", self._path("trials"), query=query)
        return TrialPage([FrozenTrial.from_dict(t) for t in answer["trials"]], answer["total"])

    def trial(self, number: int) -> FrozenTrial:
        return FrozenTrial.from_dict(self._http.call("GET", self._path("trials", number)))

    @property
    def best_trial(self) -> FrozenTrial:
        return FrozenTrial.from_dict(self._http.call("GET", self._path("best")))

    @property
    def best_trials(self) -> list[FrozenTrial]:
        return [FrozenTrial.from_dict(t) for t in self._http.call("GET", self._path("best_trials"))]

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        return value_of(self.best_trial)

    @property
    def n_counted(self) -> int:
        """Trials that count toward the budget, as the server has them now."""
        self._data = self._http.call("GET", self._path())
        return int(self._data["n_counted"])

    # -- adding trials ----------------------------------------------------------------

    def enqueue(
        self,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
    ) -> FrozenTrial:
        body = {
            "params": dict(params),
            "user_attrs": dict(user_attrs or {}),
            "skip_if_exists": skip_if_exists,
        }
        answer = self._http.call("POST", self._path("enqueue"), body, idempotent=skip_if_exists)
        return FrozenTrial.from_dict(answer)

    def enqueue_trial(
        self,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
    ) -> None:
        self.enqueue(params, user_attrs, skip_if_exists)

    # -- ask and tell -------------------------------------------------------------------

    def ask(
        self, fixed_distributions: Mapping[str, Any] | None = None, *, lease: float | None = None
    ) -> Trial:
        """Start the next trial on the server; this process beats its heartbeat until it
        is told. BudgetMet when the budget is taken, as for a local study."""
        trial = self._open(self.start_trial(lease=lease))
        for param in named(fixed_distributions or {}).values():
            trial.suggest(param)
        return trial

    def start_trial(self, worker: str | None = None, lease: float | None = None) -> FrozenTrial:
        body = {"worker": worker or f"{worker_id()} (remote)", "lease": lease or self.lease}
        # retried even when the request may have arrived: a trial started for an answer
        # that was lost is found lost after its lease, and its point asked again
        answer = self._http.call("POST", self._path("ask"), body)
        return FrozenTrial.from_dict(answer["trial"])

    def tell(
        self,
        trial: Trial | FrozenTrial | int,
        value: Any = None,
        state: TrialState | str | None = None,
        *,
        values: Sequence[Any] | None = None,
        error: str | None = None,
        constraints: Sequence[float] | None = None,
        skip_if_finished: bool = False,
    ) -> FrozenTrial:
        """Finish a trial, as `hpo.Study.tell`. Safe to retry: the server answers a
        repeated tell with the trial as first told."""
        number = trial if isinstance(trial, int) else trial.number
        live = self._live.get(number)
        if constraints is None and live is not None:
            constraints = live.constraints
        body = {
            "value": _number(value),
            "values": None if values is None else [_number(v) for v in values],
            "state": None if state is None else str(state).lower(),
            "error": error,
            "constraints": None if constraints is None else [float(c) for c in constraints],
            "skip_if_finished": skip_if_finished,
        }
        told = FrozenTrial.from_dict(
            self._http.call("POST", self._path("trials", number, "tell"), body)
        )
        self._close(number)
        return told

    def interrupt(self, trial: Trial | FrozenTrial | int) -> FrozenTrial:
        """Give a running trial back without a result, as `hpo.Study.interrupt`: FAIL
        "interrupted" and its point asked again. Safe to retry."""
        number = trial if isinstance(trial, int) else trial.number
        told = FrozenTrial.from_dict(
            self._http.call("POST", self._path("trials", number, "interrupt"))
        )
        self._close(number)
        return told

    def report(self, trial: Trial | FrozenTrial | int, value: float, step: int) -> bool:
        """Store an intermediate value; the pruner's decision: True means stop the trial."""
        number = trial if isinstance(trial, int) else trial.number
        body = {"step": step, "value": _number(value)}
        prune = bool(self._http.call("POST", self._path("trials", number, "report"), body)["prune"])
        self._prune[number] = prune
        return prune

    def heartbeat(self, trial: Trial | FrozenTrial | int | Sequence[int]) -> None:
        """Keep running trials alive (the background beat calls this with their numbers;
        a beat that fails is not retried: the next one comes soon)."""
        if isinstance(trial, Trial | FrozenTrial):
            trial = trial.number
        for number in [trial] if isinstance(trial, int) else trial:
            try:
                path = self._path("trials", number, "heartbeat")
                self._http.call("POST", path, patience=self.heartbeat_interval)
            except errors.TrialStateError:
                self._close(number)  # told or found lost meanwhile: nothing to keep alive

    @property
    def is_memory(self) -> bool:  # for hpo.heartbeat: a server is always worth beating to
        return False

    # -- the runner -------------------------------------------------------------------

    def optimize(
        self,
        objective: Callable[[Trial], Any] | str | None = None,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_jobs: int = 1,
        catch: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
        callbacks: Iterable[Callable[[Any, FrozenTrial], None]] | None = None,
        gc_after_trial: bool = False,
        show_progress_bar: bool = False,
    ) -> None:
        """Run trials here, stored on the server, as `hpo.Study.optimize` does locally
        (the same loop: n_trials, timeout, budget, n_jobs threads, callbacks).
        `objective`: a function of a Trial, a reference, or None for the study's own."""
        from hpo.checks import check_count, check_timeout
        from hpo.optimize import Loop

        fn = self._objective(objective)
        check_count(n_trials, "n_trials")
        check_timeout(timeout)
        catch = tuple(catch) if isinstance(catch, Sequence) else (catch,)
        callbacks = list(callbacks or ())
        if show_progress_bar:
            from hpo.display import Progress

            callbacks.append(Progress())
        self._stop.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            Loop(self, fn, n_trials, deadline, catch, callbacks, gc_after_trial).run(n_jobs)
        finally:
            for callback in callbacks:
                if hasattr(callback, "close"):
                    callback.close()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def run_trial(
        self,
        fn: Callable[[Trial], Any],
        record: FrozenTrial,
        catch: tuple[type[BaseException], ...] = (Exception,),
    ) -> FrozenTrial:
        """Evaluate a started trial here and tell the server its outcome. A trial the
        server found lost meanwhile (it was out of reach past the lease) has had its
        point handed out again: its outcome is dropped with a warning."""
        trial = self._open(record)
        try:
            return self._evaluate(fn, trial, catch)
        except errors.TrialStateError as exc:
            self._close(trial.number)
            log.warning("%s; its point runs again elsewhere", exc)
            return self.trial(trial.number)

    def _evaluate(
        self, fn: Callable[[Trial], Any], trial: Trial, catch: tuple[type[BaseException], ...]
    ) -> FrozenTrial:
        try:
            result = fn(trial)
        except KeyboardInterrupt:
            self.interrupt(trial)
            raise
        except BaseException as exc:
            if errors.is_pruned(exc):
                return self.tell(trial, state="pruned")
            failed = self.tell(trial, state="fail", error=traceback.format_exc())
            if isinstance(exc, catch):
                return failed
            raise
        try:
            if self.n_objectives == 1:
                return self.tell(trial, as_objective_value(result))
            return self.tell(trial, values=as_objective_values(result, self.n_objectives))
        except ValueError as exc:
            if isinstance(exc, HpoError):
                raise
            return self.tell(trial, state="fail", error=str(exc))

    def _objective(self, objective: Callable[[Trial], Any] | str | None) -> Callable[[Trial], Any]:
        from hpo.objectives import load_objective

        if objective is None:
            ref = self._data.get("objective")
            if ref is None:
                raise HpoError(
                    f"study {self.name!r} has no stored objective: `hpo worker` runs a study "
                    "created with one (over HTTP, a built-in objective's name); otherwise "
                    "ask and tell from your own code, or pass the objective to optimize()"
                )
            return load_objective(ref, self._data.get("objective_options")).fn
        if isinstance(objective, str):
            return load_objective(objective).fn
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        return objective

    def _open(self, record: FrozenTrial) -> Trial:
        """A live trial run here: its heartbeat is kept until it is told."""
        trial = Trial(self, record)
        with self._lock:
            self._live[record.number] = trial
            self._running.add(record.number)
            if self._heartbeat is None:
                self._heartbeat = Heartbeat(
                    self, lambda: sorted(self._running), self.heartbeat_interval
                ).start()
        return trial

    def _close(self, number: int) -> None:
        stopping = None
        with self._lock:
            self._live.pop(number, None)
            self._prune.pop(number, None)
            self._running.discard(number)
            if not self._running and self._heartbeat is not None:
                stopping, self._heartbeat = self._heartbeat, None
        # stopped outside the lock: the beat thread itself takes the lock (in `heartbeat`,
        # closing a trial the server no longer runs), so a join under it could deadlock
        if stopping is not None:
            stopping.stop()

    # -- what a live Trial asks of its study (hpo.trial.TrialHost) ---------------------

    def check_suggest_kind(self, name: str, kind: str) -> None:
        known = [dim.param for dim in self.space.dims]
        known += named(self._data.get("suggested_params") or {}).values()
        check_suggest_kind(known, name, kind)

    def sample_new_param(self, spec: dict[str, Any], record: FrozenTrial) -> Any:
        """Sampled by the server (with every worker's trials in view) and stored there."""
        path = self._path("trials", record.number, "suggest")
        return self._http.call("POST", path, {"param": spec})["value"]

    def define_param(self, param: Param) -> Param:
        """A parameter given by an enqueued point, now defined by the objective: the
        server learns the definition (the first one it met stays)."""
        answer = self._http.call("POST", self._path("params"), {"param": param.to_spec()})
        return Space.from_spec([answer]).params[0]

    def store_params(self, trial_id: int, params: dict[str, Any]) -> None:
        """Nothing to do: the server stored each parameter when it answered for it."""

    def store_intermediate(self, trial_id: int, step: int, value: float) -> bool:
        self.report(trial_id, value, step)  # a remote record's trial_id is its number
        return True

    def store_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        self._http.call("PUT", self._path("trials", trial_id, "user_attrs"), attrs)

    def should_prune(self, record: FrozenTrial) -> bool:
        """What the pruner said when the trial last reported (a report asks it)."""
        return self._prune.get(record.number, False)


def _number(value: Any) -> Any:
    """A value to send: NumPy, PyTorch scalars as floats; anything else as it is (the
    server names what is wrong with it)."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
