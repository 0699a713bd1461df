"""The load generator against a real HTTP server in its own process.

Run as a script, this module is that server (``python test_loadgen.py --delay-ms 50``):
it prints its port, answers every request with a small fixed response after the
configured delay, and reports what it saw (request heads, the most requests
and connections it had open at once) on ``GET /__stats``. A separate process
keeps the server's work off the generator's event loop and out of its GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshkit.loadgen import LoadSpec, Result, results_frame, run_load, summary

# ---------------------------------------------------------------- the server (child process)


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--stall-at", type=int, default=-1, help="the request index that stalls")
    parser.add_argument("--stall-ms", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true", help="read requests, never answer")
    parser.add_argument("--close-each", action="store_true", help="close after each response, unannounced")
    parser.add_argument("--framing", choices=["length", "chunked", "close", "garbage"], default="length")
    args = parser.parse_args(argv)
    state: dict[str, Any] = {"count": 0, "in_flight": 0, "max_in_flight": 0, "conns": 0, "max_conns": 0, "heads": []}
    body = b"hello"

    def response(method: str) -> bytes:
        head = "HTTP/1.1 200 OK\r\nx-meshkit-version: v2\r\nx-meshkit-response-flags: -\r\n"
        payload = b"" if method == "HEAD" else body
        if args.framing == "length":
            return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + payload
        if args.framing == "garbage":
            return b"HELLO THERE\r\n\r\n"
        if args.framing == "chunked":
            return f"{head}Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        return f"{head}Connection: close\r\n\r\n".encode() + payload

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state["conns"] += 1
        state["max_conns"] = max(state["max_conns"], state["conns"])
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                lines = raw.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                received = await reader.readexactly(int(headers.get("content-length", "0")))
                if target == "/__stats":
                    stats = json.dumps(state).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(stats), stats))
                    continue
                index = state["count"]
                state["count"] += 1
                state["heads"].append(
                    {"method": method, "target": target, "host": headers.get("host"), "body": received.decode()}
                )
                state["in_flight"] += 1
                state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
                try:
                    if args.hang:
                        await asyncio.Event().wait()
                    delay = args.delay_ms + (args.stall_ms if index == args.stall_at else 0.0)
                    if delay:
                        await asyncio.sleep(delay / 1000.0)
                finally:
                    state["in_flight"] -= 1
                writer.write(response(method))
                if args.close_each or args.framing == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            state["conns"] -= 1
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------- fixtures and helpers


class Server:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port

    def stats(self) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/__stats")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


@pytest.fixture
def server() -> Iterator[Callable[..., Server]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Server:
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=15), "test server did not start"
        return Server(proc, int(proc.stdout.readline()))

    try:
        yield start
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def free_port() -> int:
    """A port nobody listens on: bound by us, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(spec: LoadSpec, **kwargs: Any) -> list[Result]:
    return asyncio.run(run_load(spec, **kwargs))


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_requests_n_sends_exactly_n_and_records_each(server: Callable[..., Server], loop: str) -> None:
    srv = server()
    spec = LoadSpec(f"http://127.0.0.1:{srv.port}/item?id=3", rate=200, requests=37)
    factory = asyncio.new_event_loop if loop == "asyncio" else __import__("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        results = runner.run(run_load(spec))
    assert len(results) == 37
    assert srv.stats()["count"] == 37
    assert all(r.code == 200 and r.bytes == 5 and r.version == "v2" and r.flags == "-" for r in results)
    assert [r.intended_at for r in results] == sorted(r.intended_at for r in results)
    assert {h["target"] for h in srv.stats()["heads"]} == {"/item?id=3"}


def test_achieved_rate_is_within_ten_percent_of_the_asked_rate(server: Callable[..., Server]) -> None:
    srv = server()
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=200, duration_s=2.0))
    stats = summary(results_frame(results))
    assert stats["count"] == 400
    assert 180 <= stats["rps"] <= 220, stats
    assert stats["errors"] == 0 and stats["success_rate"] == 1.0


def test_latency_counts_from_the_intended_time_so_a_stall_shows_in_every_queued_request(
    server: Callable[..., Server],
) -> None:
    srv = server("--stall-at", "10", "--stall-ms", "300")
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=100, requests=60, concurrency=1))
    df = results_frame(results)
    stalled_at = df.intended_at[10]
    queued = df[(df.intended_at > stalled_at) & (df.intended_at < stalled_at + 0.3)]
    assert len(queued) >= 25
    # Nothing queued behind the stall could finish before it ended.
    waits = (stalled_at + 0.3 - queued.intended_at) * 1000.0
    assert (queued.latency_ms >= waits - 1.0).all(), queued[["intended_at", "latency_ms"]]
    # The server was quick for them: the latency is the queue, which service time hides.
    first = queued.iloc[0]
    assert first.latency_ms > 200 and first.service_ms < first.latency_ms - 100
    assert df.code.eq(200).all()


def test_concurrency_cap_is_never_exceeded_and_connections_are_reused(server: Callable[..., Server]) -> None:
    srv = server("--delay-ms", "50")
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=400, requests=100, concurrency=5))
    stats = srv.stats()
    assert stats["max_in_flight"] == 5  # reached, never passed
    assert stats["max_conns"] <= 5
    assert len(results) == 100 and all(r.code == 200 for r in results)


def test_proxy_mode_sends_absolute_form_to_the_proxy(server: Callable[..., Server]) -> None:
    proxy = server()
    spec = LoadSpec("http://productpage:9080/productpage?u=1", rate=50, requests=3, proxy=("127.0.0.1", proxy.port))
    results = run(spec)
    assert [r.code for r in results] == [200, 200, 200]
    heads = proxy.stats()["heads"]
    assert {h["target"] for h in heads} == {"http://productpage:9080/productpage?u=1"}
    assert {h["host"] for h in heads} == {"productpage:9080"}


def test_connect_to_sends_origin_form_with_the_url_host(server: Callable[..., Server]) -> None:
    srv = server()
    spec = LoadSpec(
        "http://reviews:9080/reviews/1",
        rate=50,
        requests=3,
        connect_to=("127.0.0.1", srv.port),
        headers={"x-user": "jason"},
    )
    assert all(r.code == 200 for r in run(spec))
    heads = srv.stats()["heads"]
    assert {h["target"] for h in heads} == {"/reviews/1"}
    assert {h["host"] for h in heads} == {"reviews:9080"}


def test_method_body_and_headers_are_sent(server: Callable[..., Server]) -> None:
    srv = server()
    spec = LoadSpec(f"http://127.0.0.1:{srv.port}/orders", rate=50, requests=2, method="POST", body=b"{\"n\": 1}")
    assert all(r.code == 200 for r in run(spec))
    heads = srv.stats()["heads"]
    assert [(h["method"], h["body"]) for h in heads] == [("POST", '{"n": 1}')] * 2


def test_head_responses_complete_without_a_body(server: Callable[..., Server]) -> None:
    srv = server()
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=50, requests=3, method="HEAD", timeout_s=2))
    assert [(r.code, r.bytes, r.error) for r in results] == [(200, 0, "")] * 3


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_chunked_and_close_delimited_responses_are_read_whole(server: Callable[..., Server], framing: str) -> None:
    srv = server("--framing", framing)
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=100, requests=10, timeout_s=2))
    assert [(r.code, r.bytes) for r in results] == [(200, 5)] * 10


def test_a_response_that_is_not_http_is_a_row_with_code_zero(server: Callable[..., Server]) -> None:
    srv = server("--framing", "garbage")
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=100, requests=3, timeout_s=2))
    assert [r.code for r in results] == [0, 0, 0]
    assert all(r.error.startswith("bad response: ") for r in results), results[0].error


def test_a_server_closing_idle_connections_causes_no_errors(server: Callable[..., Server]) -> None:
    srv = server("--close-each")
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=200, requests=50, concurrency=4))
    assert [r.error for r in results if r.code != 200] == []
    assert srv.stats()["count"] == 50


def test_timeouts_are_rows_with_code_zero(server: Callable[..., Server]) -> None:
    srv = server("--hang")
    started = time.monotonic()
    results = run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=20, requests=3, timeout_s=0.3))
    assert time.monotonic() - started < 5
    assert [(r.code, r.error) for r in results] == [(0, "timeout after 0.3 s")] * 3
    assert all(r.done_at - r.sent_at >= 0.29 for r in results)


def test_refused_connections_are_rows_with_code_zero() -> None:
    port = free_port()
    results = run(LoadSpec(f"http://127.0.0.1:{port}/", rate=100, requests=5, timeout_s=2))
    assert len(results) == 5
    assert all(r.code == 0 and f"127.0.0.1:{port}" in r.error and "refused" in r.error.lower() for r in results)
    stats = summary(results_frame(results))
    assert stats["errors"] == 5 and stats["success_rate"] == 0.0


def test_stop_event_ends_the_run_early_with_the_rows_so_far(server: Callable[..., Server]) -> None:
    srv = server()

    async def go() -> list[Result]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        return await run_load(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=100, duration_s=10), stop=stop)

    started = time.monotonic()
    results = asyncio.run(go())
    assert time.monotonic() - started < 3
    assert 20 <= len(results) <= 100
    assert all(r.code == 200 for r in results)


def test_progress_is_reported_at_most_about_ten_times_a_second_and_ends_complete(
    server: Callable[..., Server],
) -> None:
    srv = server()
    calls: list[tuple[int, int]] = []
    run(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=500, duration_s=1.0), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (500, 500)
    assert 3 <= len(calls) <= 15
    done = [d for d, _ in calls]
    assert done == sorted(done)


def test_runs_on_a_loop_in_a_background_thread(server: Callable[..., Server]) -> None:
    """How the Lab drives it: a loop thread of its own, the caller waits on a concurrent future."""
    srv = server()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        future = asyncio.run_coroutine_threadsafe(
            run_load(LoadSpec(f"http://127.0.0.1:{srv.port}/", rate=100, requests=20)), loop
        )
        results = future.result(timeout=20)
        assert len(results) == 20 and all(r.code == 200 for r in results)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_command_line_prints_a_json_summary(server: Callable[..., Server]) -> None:
    srv = server()
    out = subprocess.run(
        [sys.executable, "-m", "meshkit.loadgen", f"http://127.0.0.1:{srv.port}/", "--rate", "100",
         "--requests", "20", "-H", "x-user: jason", "--json"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["count"] == 20 and stats["errors"] == 0 and stats["p50_ms"] > 0


def test_command_line_rejects_bad_input_in_one_line_without_a_traceback() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "meshkit.loadgen", "ftp://x/", "--rate", "10", "--requests", "1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "scheme 'ftp' is not supported" in out.stderr


if __name__ == "__main__":
    _serve(sys.argv[1:])
