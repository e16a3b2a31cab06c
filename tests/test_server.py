"""`hpo serve`: a real server process on a free port, real HTTP, real databases.

The API end to end on SQLite, PostgreSQL and MariaDB; tokens; bad input on
every endpoint (a 4xx with one JSON message, never a 5xx); a trial whose
client vanished is found lost and its point asked again; the server killed
with SIGKILL under load and restarted loses nothing told; and a fuzz of every
operation from the server's own OpenAPI schema with zero 5xx.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import drop_hpo_tables, server_url
from serving import READ_TOKEN, WRITE_TOKEN, Served, children_of, guarded_server

import hpo
from hpo.cli import cli
from hpo.records import TrialState

SPACE = [
    {"name": "x", "type": "float", "low": -5.0, "high": 5.0},
    {"name": "c", "type": "categorical", "choices": ["a", "b"]},
]
_names = iter(range(10**6))


def new_study(server: Served, **options: object) -> str:
    name = f"s{next(_names)}"
    body = {"name": name, "space": SPACE, "sampler": "random", "seed": 1, **options}
    status, answer = server.request("POST", "/api/studies", body)
    assert status == 201, answer
    return name


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mysql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A server with no token (loopback only) on each backend."""
    workdir = tmp_path_factory.mktemp(f"serve-{request.param}")
    if request.param == "sqlite":
        storage = str(workdir / "hpo.db")
    else:
        storage = server_url(request.param)
        drop_hpo_tables(storage)
    server = Served(storage, workdir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server on SQLite with a read-write and a read-only token."""
    server = guarded_server(tmp_path_factory.mktemp("guarded"))
    yield server
    server.stop()


# -- the API end to end -------------------------------------------------------------


def test_ask_report_tell_and_read_back(served: Served) -> None:
    name = new_study(served, budget=3, pruner="median")
    status, asked = served.request("POST", f"/api/studies/{name}/ask", {"lease": 30})
    assert status == 200
    number, params = asked["number"], asked["params"]
    assert set(params) == {"x", "c"} and asked["trial"]["state"] == "RUNNING"
    path = f"/api/studies/{name}/trials/{number}"
    status, answer = served.request("POST", f"{path}/report", {"step": 0, "value": 2.5})
    assert status == 200 and answer["prune"] is False
    assert served.request("POST", f"{path}/heartbeat")[0] == 200
    status, told = served.request("POST", f"{path}/tell", {"value": 1.25})
    assert status == 200 and told["state"] == "COMPLETE" and told["value"] == 1.25
    # a retry after a lost answer: the trial as told, not an error, not a second result
    assert served.request("POST", f"{path}/tell", {"value": 1.25}) == (200, told)
    status, answer = served.request("POST", f"{path}/tell", {"value": 7.0})
    assert status == 409 and "COMPLETE already" in answer["detail"]
    assert served.request("GET", path)[1]["intermediate"] == {"0": 2.5}
    assert served.request("GET", f"/api/studies/{name}/best")[1]["value"] == 1.25
    assert [t["number"] for t in served.request("GET", f"/api/studies/{name}/best_trials")[1]] == [
        number
    ]
    status, queued = served.request(
        "POST", f"/api/studies/{name}/enqueue", {"params": {"x": 1.0, "c": "b"}}
    )
    assert status == 201 and queued["state"] == "WAITING"
    _, asked = served.request("POST", f"/api/studies/{name}/ask")
    assert asked["params"] == {"x": 1.0, "c": "b"}  # the queued point first
    served.request("POST", f"/api/studies/{name}/trials/{asked['number']}/tell", {"state": "fail"})
    _, page = served.request("GET", f"/api/studies/{name}/trials?state=COMPLETE&state=FAIL&limit=1")
    assert page["total"] == 2 and len(page["trials"]) == 1
    _, study = served.request("GET", f"/api/studies/{name}")
    assert study["n_counted"] == 2 and study["budget"] == 3
    assert name in [s["name"] for s in served.request("GET", "/api/studies")[1]]
    assert served.request("DELETE", f"/api/studies/{name}") == (204, None)
    assert served.request("GET", f"/api/studies/{name}")[0] == 404


def test_budget_is_exact_and_ask_says_when_it_is_taken(served: Served) -> None:
    name = new_study(served, budget=2)
    numbers = [served.request("POST", f"/api/studies/{name}/ask")[1]["number"] for _ in range(2)]
    status, answer = served.request("POST", f"/api/studies/{name}/ask")
    assert status == 409 and answer["error"] == "BudgetMet"
    for number in numbers:
        served.request("POST", f"/api/studies/{name}/trials/{number}/tell", {"value": 1.0})
    assert served.request("POST", f"/api/studies/{name}/ask")[1]["error"] == "BudgetMet"


def test_a_vanished_clients_trial_is_found_lost_and_its_point_asked_again(served: Served) -> None:
    name = new_study(served)
    _, lost = served.request("POST", f"/api/studies/{name}/ask", {"lease": 0.3})
    time.sleep(0.5)  # no heartbeat, no tell: the client is gone
    _, retry = served.request("POST", f"/api/studies/{name}/ask", {"lease": 30})
    assert retry["params"] == lost["params"] and retry["number"] != lost["number"]
    _, old = served.request("GET", f"/api/studies/{name}/trials/{lost['number']}")
    assert old["state"] == "FAIL" and "worker lost" in old["error"]
    status, answer = served.request(
        "POST", f"/api/studies/{name}/trials/{lost['number']}/tell", {"value": 1.0}
    )
    assert status == 409 and answer["error"] == "TrialStateError"  # too late: already failed


# -- bad input ----------------------------------------------------------------------


def test_bad_input_on_every_endpoint_is_a_4xx_with_one_message(served: Served) -> None:
    name = new_study(served, budget=10)
    _, asked = served.request("POST", f"/api/studies/{name}/ask")
    trial = f"/api/studies/{name}/trials/{asked['number']}"
    cases = [
        ("POST", "/api/studies", {"name": " padded", "space": SPACE}, 422),
        ("POST", "/api/studies", {"name": "ok", "space": [{"name": "x", "type": "nope"}]}, 422),
        ("POST", "/api/studies", {"name": "ok", "space": SPACE, "sampler": "tpee"}, 422),
        ("POST", "/api/studies", {"name": "ok", "space": SPACE, "budget": -1}, 422),
        ("POST", "/api/studies", {"name": "ok", "space": SPACE, "colour": 1}, 422),
        ("POST", "/api/studies", {"name": name, "space": SPACE}, 409),
        ("POST", "/api/studies", None, 422),
        ("GET", "/api/studies/nope", None, 404),
        ("DELETE", "/api/studies/nope", None, 404),
        ("POST", "/api/studies/nope/ask", None, 404),
        ("POST", f"/api/studies/{name}/ask", {"lease": -1}, 422),
        ("POST", f"/api/studies/{name}/ask", {"lease": "soon"}, 422),
        ("POST", f"/api/studies/{name}/enqueue", {"params": {"x": 99.0}}, 422),
        ("POST", f"/api/studies/{name}/enqueue", {"params": "x=1"}, 422),
        ("POST", f"/api/studies/{name}/enqueue", {}, 422),
        ("GET", f"/api/studies/{name}/trials?state=DONE", None, 422),
        ("GET", f"/api/studies/{name}/trials?limit=0", None, 422),
        ("GET", f"/api/studies/{name}/trials?limit=100000", None, 422),
        ("GET", f"/api/studies/{name}/trials/99", None, 404),
        ("GET", f"/api/studies/{name}/trials/-1", None, 404),
        ("GET", f"/api/studies/{name}/trials/x", None, 422),
        ("POST", f"{trial}/tell", {"value": "high"}, 422),
        ("POST", f"{trial}/tell", {}, 409),
        ("POST", f"{trial}/tell", {"state": "done"}, 422),
        ("POST", f"{trial}/tell", {"value": 1, "values": [1]}, 422),
        ("POST", f"{trial}/tell", {"values": [1, 2]}, 422),
        ("POST", f"/api/studies/{name}/trials/99/tell", {"value": 1}, 404),
        ("POST", f"{trial}/report", {"step": -1, "value": 1}, 422),
        ("POST", f"{trial}/report", {"step": 0}, 422),
        ("POST", f"/api/studies/{name}/trials/99/heartbeat", None, 404),
        ("POST", f"{trial}/suggest", {"param": {"name": "x", "type": "int", "low": 0}}, 422),
        (
            "POST",
            f"{trial}/suggest",
            {"param": {"name": "x", "type": "int", "low": 0, "high": 3}},
            422,
        ),
        ("PUT", f"{trial}/user_attrs", [1, 2], 422),
        ("GET", f"/api/studies/{name}/best", None, 404),
        ("GET", "/api/nowhere", None, 404),
        ("PATCH", "/api/studies", None, 405),
    ]
    for method, path, body, expected in cases:
        status, answer = served.request(method, path, body)
        assert status == expected, (method, path, body, status, answer)
        assert isinstance(answer["detail"], str) and answer["detail"], (method, path, answer)
        assert "Traceback" not in answer["detail"]
    assert served.request("POST", f"{trial}/tell", data=b"{not json")[0] == 422
    status, answer = served.request(
        "POST", f"{trial}/tell", data=b"x" * ((1 << 20) + 1000)
    )  # fits the socket buffers
    assert status == 413 and "bytes" in answer["detail"]
    chunked = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    chunked.request(
        "POST",
        f"{trial}/tell",
        body=iter([b" " * 700_000, b" " * 700_000]),  # no Content-Length: counted as it comes
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    assert chunked.getresponse().status == 413
    chunked.close()
    assert served.request("POST", f"{trial}/tell", {"value": 2.0})[0] == 200  # unharmed


# -- tokens and the address -----------------------------------------------------------------


def test_tokens_no_token_wrong_token_read_only_token(guarded: Served) -> None:
    status, answer = guarded.request("GET", "/api/studies", token=None)
    assert status == 401 and "missing token" in answer["detail"]
    assert guarded.request("GET", "/api/studies", token="not-the-token-at-all-0000")[0] == 401
    assert guarded.request("GET", "/api/studies", token=READ_TOKEN)[0] == 200
    name = new_study(guarded)
    status, answer = guarded.request("POST", f"/api/studies/{name}/ask", token=READ_TOKEN)
    assert status == 403 and "read-only" in answer["detail"]
    assert guarded.request("DELETE", f"/api/studies/{name}", token=READ_TOKEN)[0] == 403
    assert guarded.request("POST", f"/api/studies/{name}/ask", token=None)[0] == 401
    assert guarded.request("POST", f"/api/studies/{name}/ask")[0] == 200
    assert guarded.request("GET", f"/api/studies/{name}/trials", token=READ_TOKEN)[0] == 200
    status, _ = guarded.request("GET", "/api/studies", headers={"Origin": "https://evil.example"})
    # a token put in the query string by mistake: refused, and not written to the log
    assert guarded.request("GET", f"/api/studies?token={WRITE_TOKEN}", token=None)[0] == 401
    log = guarded.log.read_text()
    assert WRITE_TOKEN not in log and READ_TOKEN not in log and "GET /api/studies" in log


def test_serve_refuses_other_addresses_without_a_token(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HPO_TOKEN", raising=False)
    monkeypatch.delenv("HPO_READ_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--storage", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "token" in result.output
    (tmp_path / "tokens").write_text("write short\n")
    result = CliRunner().invoke(cli, ["serve", "--token-file", str(tmp_path / "tokens")])
    assert result.exit_code == 2 and "at least 16 characters" in result.output
    assert "short" not in result.output  # a token is never printed, even a bad one


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["serve", "--port", str(port), "--storage", str(tmp_path / "hpo.db")]
        )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "serving" not in result.output


def test_the_listening_socket_says_tcp_so_replies_are_not_held_back() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only on connections whose socket names
    IPPROTO_TCP; with proto 0 a kept-alive client waited ~40 ms for each reply's body."""
    import socket

    from hpo.cli_serve import listen

    with listen("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_serve_workers_needs_a_shared_database() -> None:
    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--storage", "sqlite://"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "in-memory" in result.output


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_several_server_processes_keep_the_budget_and_replace_one_that_dies(
    tmp_path: Path,
) -> None:
    """`hpo serve --workers 2`: clients on both processes take exactly the budget, with
    gapless numbers; a process killed with SIGKILL is replaced and serving goes on;
    SIGTERM stops them all."""
    served = Served(str(tmp_path / "hpo.db"), tmp_path, options=("--workers", "2")).start()
    try:
        parent = served.process
        assert parent is not None
        hpo.connect(served.url).create_study("shared", SPACE, sampler="random", budget=24)

        def client() -> None:
            study = hpo.connect(served.url, "shared")
            while True:
                try:
                    record = study.start_trial()
                except hpo.BudgetMet:
                    return
                study.tell(record.number, record.params["x"] ** 2)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        trials = hpo.load_study("shared", str(tmp_path / "hpo.db")).trials
        assert sorted(t.number for t in trials) == list(range(24))
        assert all(t.state == TrialState.COMPLETE for t in trials)

        before = children_of(parent.pid)
        assert len(before) == 2
        os.kill(min(before), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while len(children_of(parent.pid) - before) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(children_of(parent.pid)) == 2
        assert "ended (killed by signal 9); starting another" in served.log.read_text()
        assert hpo.connect(served.url, "shared").n_counted == 24  # still served

        served.stop()
        assert parent.returncode == 0
        assert not children_of(parent.pid)
    finally:
        served.kill()


def test_no_cors_headers(served: Served) -> None:
    import urllib.request

    request = urllib.request.Request(
        served.url + "/api/studies", headers={"Origin": "https://evil.example"}
    )
    with urllib.request.urlopen(request) as response:
        assert not [h for h in response.headers if h.lower().startswith("access-control")]


# -- a crash under load -----------------------------------------------------------------


def test_server_killed_under_load_then_restarted_loses_nothing(tmp_path: Path) -> None:
    """Clients keep asking and telling while the server is killed (SIGKILL) and
    started again on the same port: every tell a client saw answered is stored, the
    budget is met exactly, and the clients carry on by themselves."""
    server = Served(str(tmp_path / "hpo.db"), tmp_path).start()
    budget, told, failures = 40, [], []
    remote = hpo.connect(server.url, token="", retry_seconds=30)
    study = remote.create_study("load", SPACE, budget=budget, sampler="random")
    study.lease = 1.0  # an answer lost with the server: the trial is found lost soon

    def answered(trial: hpo.FrozenTrial) -> None:
        # (a trial found lost while the server was down: its result was dropped, and its
        # point asked again)
        if trial.state == hpo.TrialState.COMPLETE:
            told.append(trial.number)

    def client() -> None:
        mine = hpo.connect(server.url, "load", token="", retry_seconds=30)
        mine.lease, mine.heartbeat_interval, mine.poll_interval = 1.0, 0.2, 0.1

        def objective(trial: hpo.Trial) -> float:
            time.sleep(0.01)
            return trial.params["x"] ** 2

        try:  # optimize waits for trials running elsewhere, or found lost
            mine.optimize(objective, callbacks=[lambda _, trial: answered(trial)])
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(told) < 10:
        time.sleep(0.01)
    server.kill()  # SIGKILL: no shutdown, no flush
    time.sleep(1.5)  # past the lease: the trials running then are found lost, and asked again
    server.start()
    for thread in threads:
        thread.join(60)
    server.stop()
    assert not failures
    stored = {t.number: t for t in hpo.load_study("load", str(tmp_path / "hpo.db")).trials}
    assert all(stored[n].state == hpo.TrialState.COMPLETE for n in told)
    complete = [t for t in stored.values() if t.state == hpo.TrialState.COMPLETE]
    assert len(complete) == budget  # retries of lost asks included, no more
    assert len(set(told)) == len(told)  # no trial told twice


# -- the schema, fuzzed -----------------------------------------------------------------------


# schemathesis' own strategies draw randomness Hypothesis sometimes warns of
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
def test_fuzz_every_operation_from_the_openapi_schema_no_5xx(tmp_path: Path) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    server = Served(str(tmp_path / "hpo.db"), tmp_path).start()
    try:
        new_study(server, budget=5)  # something real for some requests to hit
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        server_errors = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=5,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.url)
                if response.status_code >= 500:
                    server_errors.append((case.method, case.formatted_path, response.text))
                elif response.status_code != 204:
                    assert "json" in str(response.headers.get("content-type")), response.text

            check()
        assert not server_errors
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()
