"""The HTTP API of `hpo serve`: JSON in, the study API (hpo.catalog, hpo.study), JSON out.

FastAPI on uvicorn: the request models give validation with one message per
bad field, the OpenAPI schema (/openapi.json, browsable at /docs) comes from
the same code, and both are widely used and well kept. The routes only map
JSON to the Python API and its errors to status codes; every rule (budget,
space, tells, leases) lives in the API, as it does for the CLI.

Everything is under /api; `/` is left to the dashboard, which mounts its own
routes on the app `create_app` returns and guards them with the same
`require_read` / `require_write` dependencies (`dependencies=[Depends(require_read)]`).
The app's state holds `storage` (the Storage), `studies` (the StudyPool: one
Study per name, `app.state.studies.get(name)`) and `tokens`.

    GET    /api/studies                               list
    POST   /api/studies                               create
    GET    /api/studies/{name}                        one study
    DELETE /api/studies/{name}                        delete
    POST   /api/studies/{name}/ask                    start a trial -> number, params
    POST   /api/studies/{name}/enqueue                queue a point
    GET    /api/studies/{name}/trials                 a page of trials (?state=&limit=&offset=)
    GET    /api/studies/{name}/trials/{n}             one trial
    POST   /api/studies/{name}/trials/{n}/tell        finish it (idempotent)
    POST   /api/studies/{name}/trials/{n}/report      intermediate value -> prune or not
    POST   /api/studies/{name}/trials/{n}/heartbeat   keep it alive
    POST   /api/studies/{name}/trials/{n}/suggest     define-by-run parameter -> value
    POST   /api/studies/{name}/params                 define a parameter (define-by-run)
    PUT    /api/studies/{name}/trials/{n}/user_attrs  its user attributes
    GET    /api/studies/{name}/best                   the best trial
    GET    /api/studies/{name}/best_trials            the Pareto front

Errors are {"detail": "one message", "error": "HpoErrorClass"} with a 4xx
code (a 5xx only for the server's own faults, logged here, never shown).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hpo import errors
from hpo.catalog import create_study, open_storage, studies
from hpo.records import FrozenTrial, TrialState
from hpo.storage import Storage
from hpo.study import Study
from hpo.tokens import Access, Tokens

MAX_BODY_BYTES = 1 << 20  # a study's space or a told result is far smaller
DRAIN_BYTES = 16 << 20  # what a refused body may still send before the connection closes
TRIAL_PAGE_LIMIT = 1000  # the most trials one page may hold
log = logging.getLogger("hpo.server")

# -- authentication (reused by the dashboard's routes) ------------------------------

_bearer = HTTPBearer(auto_error=False, description="a read-only or read-write token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _access(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Access:
    tokens: Tokens = request.app.state.tokens
    return tokens.access(None if credentials is None else credentials.credentials)


async def require_read(request: Request, credentials: Credentials) -> None:
    """A dependency: the request carries a read-only or read-write token (401 if not).
    The dependencies are async (they do not block): FastAPI would run a plain def in
    a worker thread, a hop that costs more than the check."""
    if _access(request, credentials) < Access.READ:
        raise _unauthorized(credentials)


async def require_write(request: Request, credentials: Credentials) -> None:
    """A dependency: the request carries a read-write token (401 if none, 403 if
    read-only)."""
    access = _access(request, credentials)
    if access < Access.READ:
        raise _unauthorized(credentials)
    if access < Access.WRITE:
        raise HTTPException(403, "this token is read-only; this request needs a read-write token")


def _unauthorized(credentials: HTTPAuthorizationCredentials | None) -> HTTPException:
    detail = (
        "missing token: send the header 'Authorization: Bearer TOKEN'"
        if credentials is None
        else "invalid token"
    )
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


Read = Depends(require_read)
Write = Depends(require_write)

# -- the studies the server holds open ---------------------------------------------


class StudyPool:
    """One Study object per study name, kept between requests: a Study keeps its trials
    in memory and refreshes only what changed, so an ask costs what changed since the
    last one, not the size of the study. Every server thread shares it (a Study
    serializes its own calls). A study's settings are read when it is first served;
    a budget raised elsewhere is seen when ask finds the old one met."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._studies: dict[str, Study] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Study:
        with self._lock:
            study = self._studies.get(name)
        if study is None:
            study = Study(self.storage, self.storage.get_study(name))
            with self._lock:
                study = self._studies.setdefault(name, study)
        return study

    def forget(self, name: str) -> None:
        """Drop a study that was deleted (or that vanished under us)."""
        with self._lock:
            self._studies.pop(name, None)


def _studies(request: Request) -> StudyPool:
    pool: StudyPool = request.app.state.studies
    return pool


async def _pool(request: Request) -> StudyPool:  # async: no worker thread for a lookup
    return _studies(request)


Pool = Annotated[StudyPool, Depends(_pool)]

# -- request bodies -------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


Number = Annotated[float, Field(allow_inf_nan=False)]


class StudyCreate(_Body):
    name: str = Field(description="the study's name (letters, digits, . _ -)")
    space: list[dict[str, Any]] | None = Field(
        default=None,
        description="parameters, as in a study file's [[space]] (default: the objective's)",
    )
    direction: Literal["minimize", "maximize"] | None = None
    directions: list[Literal["minimize", "maximize"]] | None = None
    objective_names: list[str] | None = Field(
        default=None, description="one name per objective, for tables and figures"
    )
    sampler: str = "tpe"
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = Field(default_factory=dict)
    budget: int | None = Field(default=None, description="total trials")
    seed: int | None = None
    user_attrs: dict[str, Any] = Field(default_factory=dict)
    load_if_exists: bool = False
    objective: str | None = Field(
        default=None,
        description="a built-in objective's name, for workers (`hpo worker NAME --storage "
        "URL`); a reference to code is refused: the server would import it",
    )
    objective_options: dict[str, Any] = Field(default_factory=dict)


class AskBody(_Body):
    worker: str | None = Field(default=None, max_length=200, description="who runs the trial")
    lease: Number | None = Field(
        default=None, description="seconds without a heartbeat after which the trial is lost"
    )


class TellBody(_Body):
    value: Number | None = None
    values: list[Number] | None = None
    state: Literal["complete", "pruned", "fail"] | None = None
    error: str | None = Field(default=None, max_length=10_000)
    constraints: list[Number] | None = None
    skip_if_finished: bool = False


class ReportBody(_Body):
    step: int = Field(ge=0)
    value: float


class EnqueueBody(_Body):
    params: dict[str, Any]
    user_attrs: dict[str, Any] = Field(default_factory=dict)
    skip_if_exists: bool = False


class SuggestBody(_Body):
    param: dict[str, Any] = Field(description="a parameter's definition, as in [[space]]")


# -- routes -----------------------------------------------------------------------------

router = APIRouter(prefix="/api")


@router.get("/studies", dependencies=[Read])
def list_studies(pool: Pool) -> list[dict[str, Any]]:
    return [_summary(s) for s in studies(pool.storage)]


@router.post("/studies", status_code=201, dependencies=[Write])
def create(body: StudyCreate, pool: Pool) -> dict[str, Any]:
    from hpo.export import study_dict
    from hpo.objectives import BUILTIN

    if body.objective is not None and body.objective not in BUILTIN:
        raise errors.ObjectiveError(
            f"objective {body.objective!r}: over HTTP only a built-in objective is taken "
            f"({', '.join(sorted(BUILTIN))}); create a study with your own with hpo create"
        )
    study = create_study(
        body.name,
        pool.storage,
        space=body.space,
        sampler=body.sampler,
        sampler_options=body.sampler_options,
        pruner=body.pruner,
        pruner_options=body.pruner_options,
        direction=body.direction,
        directions=body.directions,
        objective_names=body.objective_names,
        budget=body.budget,
        seed=body.seed,
        user_attrs=body.user_attrs,
        load_if_exists=body.load_if_exists,
        objective=body.objective,
        objective_options=body.objective_options,
    )
    return study_dict(pool.get(study.name))


@router.post("/studies/{name:path}/ask", dependencies=[Write])
def ask(name: str, pool: Pool, request: Request, body: AskBody | None = None) -> dict[str, Any]:
    body = body or AskBody()
    worker = body.worker or f"http-client {request.client.host if request.client else ''}"
    try:
        trial = pool.get(name).ask(worker=worker, lease=body.lease)
    except errors.BudgetMet:  # the budget may have been raised elsewhere (hpo resume --trials)
        pool.forget(name)
        trial = pool.get(name).ask(worker=worker, lease=body.lease)
    record = {
        "number": trial.number,
        "state": TrialState.RUNNING,
        "params": trial.params,
        "user_attrs": trial.user_attrs,
        "system_attrs": trial.system_attrs,
        "worker": worker,
    }
    return {"study": name, "number": trial.number, "params": trial.params, "trial": record}


@router.post("/studies/{name:path}/enqueue", status_code=201, dependencies=[Write])
def enqueue(name: str, body: EnqueueBody, pool: Pool) -> dict[str, Any]:
    record = pool.get(name).enqueue(body.params, body.user_attrs, body.skip_if_exists)
    return record.to_dict()


@router.get("/studies/{name:path}/trials", dependencies=[Read])
def trials(
    name: str,
    pool: Pool,
    state: Annotated[list[TrialState] | None, Query(description="only trials in these")] = None,
    sort: Literal["number", "value", "duration"] = "number",
    descending: bool = False,
    limit: Annotated[int, Query(ge=1, le=TRIAL_PAGE_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    page = pool.get(name).trials_page(state or (), sort, descending, limit, offset)
    return {"total": page.total, "trials": [t.to_dict() for t in page.trials]}


@router.get("/studies/{name:path}/trials/{number}", dependencies=[Read])
def trial(name: str, number: int, pool: Pool) -> dict[str, Any]:
    return pool.get(name).trial(number).to_dict()


@router.post("/studies/{name:path}/trials/{number}/tell", dependencies=[Write])
def tell(name: str, number: int, body: TellBody, pool: Pool) -> dict[str, Any]:
    told = pool.get(name).tell(
        number,
        body.value,
        body.state,
        values=body.values,
        error=body.error,
        constraints=body.constraints,
        skip_if_finished=body.skip_if_finished,
    )
    return told.to_dict()


@router.post("/studies/{name:path}/trials/{number}/report", dependencies=[Write])
def report(name: str, number: int, body: ReportBody, pool: Pool) -> dict[str, Any]:
    prune = pool.get(name).report(number, body.value, body.step)
    return {"number": number, "step": body.step, "prune": prune}


@router.post("/studies/{name:path}/trials/{number}/interrupt", dependencies=[Write])
def interrupt(name: str, number: int, pool: Pool) -> dict[str, Any]:
    """A client stopped mid-trial (Ctrl-C): the trial FAILs "interrupted" and its point
    is asked again, as for a local worker."""
    return pool.get(name).interrupt(number).to_dict()


@router.post("/studies/{name:path}/trials/{number}/heartbeat", dependencies=[Write])
def heartbeat(name: str, number: int, pool: Pool) -> dict[str, Any]:
    record = pool.get(name).heartbeat(number)
    return {"number": number, "heartbeat_at": record.heartbeat_at}


@router.post("/studies/{name:path}/trials/{number}/suggest", dependencies=[Write])
def suggest(name: str, number: int, body: SuggestBody, pool: Pool) -> dict[str, Any]:
    """A parameter the client's objective defines by run (trial.suggest_*): sampled and
    stored here, as for a trial run in the server's process."""
    from hpo.space import Space
    from hpo.trial import Trial

    study = pool.get(name)
    param = Space.from_spec([body.param]).params[0]
    live = Trial(study, _running(study, number))
    return {"name": param.name, "value": live.suggest(param)}


@router.post("/studies/{name:path}/params", dependencies=[Write])
def define_param(name: str, body: SuggestBody, pool: Pool) -> dict[str, Any]:
    """Teach the study a parameter an objective defines by run; its first definition
    stays, and is returned."""
    from hpo.space import Space

    return pool.get(name).define_param(Space.from_spec([body.param]).params[0]).to_spec()


@router.put("/studies/{name:path}/trials/{number}/user_attrs", dependencies=[Write])
def user_attrs(name: str, number: int, body: dict[str, Any], pool: Pool) -> dict[str, Any]:
    from hpo.trial import Trial

    study = pool.get(name)
    live = Trial(study, _running(study, number))
    for key, value in body.items():
        live.set_user_attr(key, value)
    return live.user_attrs


@router.get("/studies/{name:path}/best", dependencies=[Read])
def best(name: str, pool: Pool) -> dict[str, Any]:
    return pool.get(name).best_trial.to_dict()


@router.get("/studies/{name:path}/best_trials", dependencies=[Read])
def best_trials(name: str, pool: Pool) -> list[dict[str, Any]]:
    return [t.to_dict() for t in pool.get(name).best_trials]


# A study's own routes come last: its name may hold "/" (a comparison's members are
# NAME/objective/sampler/seed-K), so `{name:path}` alone would swallow the routes above.
@router.get("/studies/{name:path}", dependencies=[Read])
def get_study(name: str, pool: Pool) -> dict[str, Any]:
    from hpo.export import study_dict

    study = pool.get(name)
    return {**study_dict(study), "n_trials": len(study.trials), "n_counted": study.n_counted}


@router.delete("/studies/{name:path}", status_code=204, dependencies=[Write])
def delete(name: str, pool: Pool) -> Response:
    pool.forget(name)
    pool.storage.delete_study(name)
    return Response(status_code=204)


def _running(study: Study, number: int) -> FrozenTrial:
    """A trial a client may still change: running (heartbeat refuses any other)."""
    return study.heartbeat(number)


def _summary(summary: Any) -> dict[str, Any]:
    info = summary.info
    best = summary.best_value
    return {
        "name": info.name,
        "direction": info.directions_text,
        "directions": list(info.directions),
        "sampler": info.sampler,
        "budget": info.budget,
        "seed": info.seed,
        "created_at": info.created_at,
        "counts": summary.counts,
        "best_value": best if best is None or math.isfinite(best) else None,
    }


# -- errors -----------------------------------------------------------------------------

# hpo's exceptions -> status codes; the first class an error is an instance of wins
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (errors.StudyNotFoundError, 404),
    (errors.TrialNotFoundError, 404),
    (errors.NoCompletedTrialsError, 404),
    (errors.DuplicateStudyError, 409),
    (errors.TrialStateError, 409),
    (errors.BudgetMet, 409),
    (errors.SamplerExhausted, 409),
    (errors.TransientStorageError, 503),
    (errors.SchemaVersionError, 503),
    (errors.StorageError, 503),
    (errors.HpoError, 422),  # space, sampler, pruner, value, config: the input is wrong
    (ValueError, 422),  # an argument check of the API that is not (yet) an HpoError
)


def _status_of(exc: Exception) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def _error(status: int, detail: str, kind: str | None = None, **headers: str) -> JSONResponse:
    content = {"detail": detail} if kind is None else {"detail": detail, "error": kind}
    return JSONResponse(content, status_code=status, headers=headers or None)


async def _hpo_error(request: Request, exc: Exception) -> JSONResponse:
    status = _status_of(exc)
    if isinstance(exc, errors.StudyNotFoundError | errors.TrialNotFoundError):
        name = request.path_params.get("name")
        if name is not None:
            _studies(request).forget(name)  # deleted elsewhere: load afresh next time
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return _error(status, str(exc) or type(exc).__name__, type(exc).__name__)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for problem in exc.errors()[:3]:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    more = len(exc.errors()) - len(problems)
    detail = "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
    return _error(422, detail or "invalid request", "RequestValidationError")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _error(exc.status_code, str(exc.detail), None, **(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal server error (the server's log has the details)", "InternalError")


# -- the request size limit -----------------------------------------------------------

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before a route reads
    it, whether it announces its length (Content-Length) or streams in chunks (read
    here, at most `limit` bytes of it, then handed on)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                await self._too_large(scope, receive, send, more)
                return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()  # the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any, more: bool = True) -> None:
        """413; the rest of the body is read first (up to DRAIN_BYTES) and dropped, so
        that the client, still sending, reads the answer instead of a broken pipe."""
        drained = 0
        while more and drained < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        response = _error(413, f"request body over {self.limit} bytes", "RequestTooLarge")
        await response(scope, receive, send)


# -- the app ---------------------------------------------------------------------------


def api_docs() -> Response:
    """The browsable API docs (Swagger UI, vendored in hpo/static/vendor: nothing is
    fetched from elsewhere)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="hpo API",
        swagger_js_url="/dashboard/vendor/swagger-ui-bundle.js",
        swagger_css_url="/dashboard/vendor/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


def create_app(
    storage: str | Storage | None,
    tokens: Tokens | None = None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The ASGI app serving the studies in `storage` to bearers of `tokens` (none: to
    everyone, which `hpo serve` allows on a loopback address only). No CORS headers
    are sent, so browsers keep other sites' pages from calling it."""
    from hpo import __version__

    app = FastAPI(
        title="hpo",
        version=__version__,
        description="Ask and tell hyperparameter trials over HTTP. Send "
        "'Authorization: Bearer TOKEN'.",
        docs_url=None,  # FastAPI's own pages load Swagger UI from a CDN: ours, offline
        redoc_url=None,
    )
    app.add_api_route("/docs", api_docs, include_in_schema=False)
    store = open_storage(storage)
    app.state.storage = store
    app.state.tokens = tokens or Tokens()
    app.state.studies = StudyPool(store)
    app.include_router(router)
    from hpo.dashboard import router as dashboard  # the web page at / (issue 20)

    app.include_router(dashboard)
    app.add_exception_handler(errors.HpoError, _hpo_error)
    app.add_exception_handler(ValueError, _hpo_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app
