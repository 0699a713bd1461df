"""Demo apps as real processes on loopback, called over real sockets.

Apps listen on port 0 and print the port they got; downstreams are found
through a real resolver file; "tiny recording servers" stand in for a
downstream service or a sidecar and keep what they received.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshkit.demo.apps import Latency, WorkloadSpec, get_app
from meshkit.demo.bookinfo import DETAILS_UNAVAILABLE, RATINGS_UNAVAILABLE, REVIEWS_UNAVAILABLE
from meshkit.demo.resolver import write_resolver

pytestmark = pytest.mark.timeout(60)

START_TIMEOUT_S = 15.0
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                   "NO_PROXY", "no_proxy")


@dataclass
class DemoProcess:
    name: str
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise AssertionError(f"no output within {timeout_s} s")
    return proc.stdout.readline()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., DemoProcess]]:
    """Start `python -m meshkit.demo` processes; every one is killed afterwards."""
    started: list[DemoProcess] = []

    def start(spec: dict[str, Any], *, env: dict[str, str] | None = None, name: str = "") -> DemoProcess:
        name = name or f"{spec['service']}-{spec['version']}"
        spec_path = tmp_path / f"{name}-{len(started)}.json"
        spec_path.write_text(json.dumps(spec))
        environ = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        environ.update(env or {})
        proc = subprocess.Popen([sys.executable, "-m", "meshkit.demo", "--spec", str(spec_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
        running = DemoProcess(name, proc, 0)
        started.append(running)
        line = _read_line(proc, START_TIMEOUT_S)
        if not line:
            proc.wait(timeout=5)
            assert proc.stderr is not None
            raise AssertionError(f"{name} exited {proc.returncode}: {proc.stderr.read()}")
        assert " listening on 127.0.0.1:" in line, line
        running.port = int(line.rsplit(":", 1)[1])
        return running

    try:
        yield start
    finally:
        for running in started:
            if running.proc.poll() is None:
                running.proc.kill()
            running.proc.wait(timeout=10)
            for stream in (running.proc.stdout, running.proc.stderr):
                if stream is not None:
                    stream.close()


@dataclass
class Recorder:
    """A tiny HTTP server that records every request and answers JSON."""

    server: ThreadingHTTPServer
    name: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    barrier: threading.Barrier | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@pytest.fixture
def recorders() -> Iterator[Callable[..., Recorder]]:
    made: list[tuple[Recorder, threading.Thread]] = []

    def make(name: str, *, barrier: threading.Barrier | None = None) -> Recorder:
        holder: dict[str, Recorder] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                recorder = holder["recorder"]
                recorder.requests.append({"path": self.path,
                                          "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "cookies": self.headers.get_all("cookie") or []})
                if recorder.barrier is not None:
                    recorder.barrier.wait()
                body = json.dumps({"service": recorder.name, "instance": f"{recorder.name}-rec"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests`, not a log."""

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        recorder = Recorder(server, name, barrier=barrier)
        holder["recorder"] = recorder
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        made.append((recorder, thread))
        return recorder

    try:
        yield make
    finally:
        for recorder, thread in made:
            if recorder.barrier is not None:
                recorder.barrier.abort()
            recorder.server.shutdown()
            recorder.server.server_close()
            thread.join(timeout=5)


def _workload(app: str, name: str) -> WorkloadSpec:
    return next(w for w in get_app(app) if w.name == name)


def _spec(workload: WorkloadSpec, resolver: Path | None) -> dict[str, Any]:
    return workload.app_spec(namespace="default", host="127.0.0.1", port=0,
                             resolver=str(resolver) if resolver else None)


def _host(service: str) -> str:
    return f"{service}.default.svc.cluster.local"


def _generic(service: str, calls: list[dict[str, Any]], resolver: Path | None, **extra: Any) -> dict[str, Any]:
    return {"service": service, "version": "v1", "port": 0, "calls": calls,
            "resolver": str(resolver) if resolver else None, **extra}


def _get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 15.0) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        return client.get(url, headers=headers)


def _start_bookinfo(launch: Callable[..., DemoProcess], dns: Path,
                    names: tuple[str, ...], replace: dict[str, WorkloadSpec] | None = None
                    ) -> dict[str, DemoProcess]:
    replace = replace or {}
    running = {name: launch(_spec(replace.get(name) or _workload("bookinfo", name), dns)) for name in names}
    write_resolver(dns, {_host(p.name.rsplit("-", 1)[0]): [("127.0.0.1", p.port)] for p in running.values()})
    return running


BOOKINFO_V2 = ("ratings-v1", "reviews-v2", "details-v1", "productpage-v1")


def test_productpage_shows_details_and_reviews_v2_with_black_stars(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    apps = _start_bookinfo(launch, dns, BOOKINFO_V2)

    page = _get(apps["productpage-v1"].url + "/productpage?u=normal")

    assert page.status_code == 200
    body = page.json()
    assert (body["service"], body["version"], body["instance"]) == ("productpage", "v1", "productpage-v1")
    assert body["product"]["title"] == "The Comedy of Errors"
    assert body["details"]["author"] == "William Shakespeare"
    assert body["reviews"]["version"] == "v2"
    assert [r["rating"] for r in body["reviews"]["reviews"]] == [
        {"stars": 5, "color": "black"}, {"stars": 4, "color": "black"}]
    assert [(c["service"], c["status"], c["served_by"]) for c in body["calls"]] == [
        ("details", 200, "details-v1"), ("reviews", 200, "reviews-v2")]
    assert body["reviews"]["calls"][0]["url"] == "http://ratings:9080/ratings/0"
    assert _get(apps["productpage-v1"].url + "/").json()["reviews"]["version"] == "v2"


def test_reviews_shows_ratings_unavailable_when_ratings_is_down(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    apps = _start_bookinfo(launch, dns, BOOKINFO_V2)
    assert _get(apps["productpage-v1"].url + "/productpage").json()["reviews"]["reviews"][0]["rating"]["stars"] == 5

    apps["ratings-v1"].proc.kill()
    apps["ratings-v1"].proc.wait(timeout=10)
    body = _get(apps["productpage-v1"].url + "/productpage").json()

    reviews = body["reviews"]
    assert reviews["version"] == "v2"
    assert [r["rating"] for r in reviews["reviews"]] == [{"error": RATINGS_UNAVAILABLE}] * 2
    assert reviews["calls"][0]["status"] is None and reviews["calls"][0]["error"]


def test_slow_reviews_makes_productpage_give_up_after_two_3s_attempts(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    slow = dataclasses.replace(_workload("bookinfo", "reviews-v2"), latency=Latency(5000.0, 5000.0))
    apps = _start_bookinfo(launch, dns, ("ratings-v1", "reviews-v2", "details-v1", "productpage-v1"),
                           {"reviews-v2": slow})

    started = time.monotonic()
    page = _get(apps["productpage-v1"].url + "/productpage", timeout=30.0)
    elapsed = time.monotonic() - started

    assert page.status_code == 200
    body = page.json()
    assert body["reviews"] == {"error": REVIEWS_UNAVAILABLE}
    assert body["details"]["author"] == "William Shakespeare"
    reviews_call = body["calls"][1]
    assert reviews_call["attempts"] == 2 and "timed out after 3 s" in reviews_call["error"]
    assert 5.5 <= elapsed <= 9.0


def test_productpage_forwards_to_details_and_reviews_and_signs_jason_in(launch, recorders, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    details, reviews = recorders("details"), recorders("reviews")
    write_resolver(dns, {_host("details"): [("127.0.0.1", details.port)],
                         _host("reviews"): [("127.0.0.1", reviews.port)]})
    productpage = launch(_spec(_workload("bookinfo", "productpage-v1"), dns))

    page = _get(productpage.url + "/productpage", headers={"cookie": "user=jason", "x-request-id": "r-9"})

    assert page.status_code == 200
    assert [r["path"] for r in details.requests + reviews.requests] == ["/details/0", "/reviews/0"]
    for received in details.requests + reviews.requests:
        assert received["headers"]["end-user"] == "jason"
        assert received["headers"]["x-request-id"] == "r-9"
        assert received["cookies"] == ["user=jason"]


def test_details_failure_shows_bookinfo_apology(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    broken = dataclasses.replace(_workload("bookinfo", "details-v1"), error_rate=1.0)
    apps = _start_bookinfo(launch, dns, ("reviews-v1", "details-v1", "productpage-v1"), {"details-v1": broken})

    body = _get(apps["productpage-v1"].url + "/productpage").json()

    assert body["details"] == {"error": DETAILS_UNAVAILABLE}
    assert body["calls"][0]["status"] == 500
    assert "rating" not in body["reviews"]["reviews"][0]


def test_error_rate_one_answers_500_saying_so(launch) -> None:
    app = launch(_generic("flaky", [], None, error_rate=1.0))

    answers = [_get(app.url + "/flaky") for _ in range(5)]

    assert [a.status_code for a in answers] == [500] * 5
    assert "injected failure" in answers[0].json()["error"]
    assert answers[0].json()["instance"] == "flaky-v1"


def test_forwards_tracing_and_identity_headers_with_the_service_host(launch, recorders, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    backend = recorders("backend")
    write_resolver(dns, {_host("backend"): [("127.0.0.1", backend.port)]})
    app = launch(_generic("front", [{"service": "backend", "path": "/items/{id}", "timeout_s": 2.0}], dns),
                 env={"MESHKIT_INSTANCE": "front-v1-7"})
    sent = {"x-request-id": "req-42", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "end-user": "jason", "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
            "cookie": "user=jason", "x-not-forwarded": "secret"}

    answer = _get(app.url + "/front/12", headers=sent)

    assert answer.status_code == 200
    assert answer.json()["instance"] == "front-v1-7"
    assert answer.json()["backend"]["instance"] == "backend-rec"
    [received] = backend.requests
    assert received["path"] == "/items/12"
    assert received["headers"]["host"] == "backend:9080"
    for name in ("x-request-id", "traceparent", "end-user", "x-b3-traceid", "cookie"):
        assert received["headers"][name] == sent[name]
    assert "x-not-forwarded" not in received["headers"]


def test_http_proxy_sends_absolute_form_requests_to_the_sidecar(launch, recorders) -> None:
    sidecar = recorders("sidecar")
    app = launch(_generic("reviews", [{"service": "ratings", "path": "/ratings/{id}", "timeout_s": 2.0}], None),
                 env={"HTTP_PROXY": f"http://127.0.0.1:{sidecar.port}"})

    answer = _get(app.url + "/reviews/3", headers={"x-request-id": "abc", "end-user": "jason"})

    assert answer.status_code == 200
    [received] = sidecar.requests
    assert received["path"] == "http://ratings:9080/ratings/3"
    assert received["headers"]["host"] == "ratings:9080"
    assert received["headers"]["x-request-id"] == "abc"
    assert received["headers"]["end-user"] == "jason"
    assert answer.json()["calls"][0]["address"] is None


def test_resolver_file_changes_are_picked_up_and_calls_take_turns(launch, recorders, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    first, second = recorders("first"), recorders("second")
    write_resolver(dns, {_host("backend"): [("127.0.0.1", first.port)]})
    app = launch(_generic("front", [{"service": "backend", "path": "/", "timeout_s": 2.0}], dns))

    assert _get(app.url + "/").json()["backend"]["service"] == "first"
    write_resolver(dns, {_host("backend"): [("127.0.0.1", first.port), ("127.0.0.1", second.port)]})
    served = sorted(_get(app.url + "/").json()["backend"]["service"] for _ in range(2))
    write_resolver(dns, {_host("backend"): [("127.0.0.1", second.port)]})
    last = _get(app.url + "/").json()["backend"]["service"]

    assert served == ["first", "second"]
    assert last == "second"
    assert (len(first.requests), len(second.requests)) == (2, 2)


def test_missing_service_in_resolver_fails_the_call_with_a_clear_reason(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    write_resolver(dns, {})
    app = launch(_generic("front", [{"service": "nowhere", "path": "/", "timeout_s": 1.0}], dns))

    answer = _get(app.url + "/")

    assert answer.status_code == 502
    assert "no endpoints for nowhere.default.svc.cluster.local" in answer.json()["calls"][0]["error"]


def test_concurrent_calls_are_in_flight_together(launch, recorders, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    # Each recorder answers only once both calls have arrived: made in order,
    # the first call would wait for a second that never comes and time out.
    barrier = threading.Barrier(2, timeout=3.0)
    left, right = recorders("left", barrier=barrier), recorders("right", barrier=barrier)
    write_resolver(dns, {_host("left"): [("127.0.0.1", left.port)], _host("right"): [("127.0.0.1", right.port)]})
    calls = [{"service": "left", "path": "/", "timeout_s": 5.0}, {"service": "right", "path": "/", "timeout_s": 5.0}]
    app = launch(_generic("front", calls, dns, concurrent_calls=True))

    answer = _get(app.url + "/")

    assert answer.status_code == 200, answer.text
    assert (answer.json()["left"]["service"], answer.json()["right"]["service"]) == ("left", "right")


def test_shop_frontend_serves_through_catalog_and_cart(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    names = ("payment-v1", "inventory-v1", "cart-v1", "catalog-v1", "frontend-v1")
    running = {name: launch(_spec(_workload("shop", name), dns)) for name in names}
    write_resolver(dns, {_host(p.name.rsplit("-", 1)[0]): [("127.0.0.1", p.port)] for p in running.values()})

    answer = _get(running["frontend-v1"].url + "/")

    assert answer.status_code == 200
    body = answer.json()
    assert body["catalog"]["version"] == "v1"
    assert {"inventory", "payment"} <= set(body["cart"])
    assert body["cart"]["payment"]["instance"] == "payment-v1"


def test_healthz_answers_and_unknown_paths_are_404(launch) -> None:
    app = launch(_spec(_workload("bookinfo", "ratings-v1"), None))

    assert _get(app.url + "/healthz").json()["ok"] is True
    missing = _get(app.url + "/ratings/abc")
    assert missing.status_code == 404
    assert "ratings has no path /ratings/abc" in missing.json()["error"]
    assert _get(app.url + "/ratings/7").json()["id"] == 7


def test_sigterm_exits_cleanly_and_fast_even_with_a_request_in_flight(launch) -> None:
    app = launch(_generic("slow", [], None, latency_ms={"p50": 5000.0, "p99": 5000.0}))
    with socket.create_connection(("127.0.0.1", app.port), timeout=5.0) as in_flight:
        in_flight.sendall(b"GET /slow HTTP/1.1\r\nHost: slow\r\n\r\n")
        # Answered on a second connection only after the loop has read the first.
        assert _get(app.url + "/healthz").status_code == 200

        app.proc.send_signal(signal.SIGTERM)
        returncode = app.proc.wait(timeout=3.0)
        answer = in_flight.recv(65536)

    assert returncode == 0
    assert app.proc.stderr is not None and "Traceback" not in app.proc.stderr.read()
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"is shutting down" in answer


def test_sigterm_right_after_the_ready_line_still_stops_the_app(launch) -> None:
    app = launch(_generic("quick", [], None))

    app.proc.send_signal(signal.SIGTERM)

    assert app.proc.wait(timeout=3.0) == 0


def test_bad_spec_exits_2_with_one_line_naming_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"service": "x", "version": "v1", "port": 0,
                                "latency_ms": {"p50": 9, "p99": 3}}))

    done = subprocess.run([sys.executable, "-m", "meshkit.demo", "--spec", str(spec)],
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "latency_ms.p99" in done.stderr and "at least p50" in done.stderr


def test_taken_port_exits_3_saying_so(launch, tmp_path: Path) -> None:
    first = launch(_generic("one", [], None))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(_generic("two", [], None) | {"port": first.port}))

    done = subprocess.run([sys.executable, "-m", "meshkit.demo", "--spec", str(spec)],
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{first.port}: the port is already in use" in done.stderr


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_productpage_answers_a_browser_with_html_and_programs_with_the_same_json(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    apps = _start_bookinfo(launch, dns, BOOKINFO_V2)
    url = apps["productpage-v1"].url + "/productpage"

    page = _get(url, headers={"accept": BROWSER_ACCEPT})
    as_json = [_get(url, headers=headers) for headers in ({}, {"accept": "*/*"}, {"accept": "application/json"})]

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["vary"] == "accept"
    assert page.text.count('data-color="black"') == 2 and "Reviews served by: reviews-v2" in page.text
    assert "<th>Author</th><td>William Shakespeare</td>" in page.text
    for answer in as_json:
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["reviews"]["version"] == "v2" and answer.json()["product"]["id"] == 0


def test_signing_in_sets_the_cookie_that_becomes_end_user(launch, recorders, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    details, reviews = recorders("details"), recorders("reviews")
    write_resolver(dns, {_host("details"): [("127.0.0.1", details.port)],
                         _host("reviews"): [("127.0.0.1", reviews.port)]})
    productpage = launch(_spec(_workload("bookinfo", "productpage-v1"), dns))

    with httpx.Client(base_url=productpage.url, trust_env=False, timeout=15.0) as browser:
        browser.headers["accept"] = BROWSER_ACCEPT
        signed_out = browser.get("/productpage")
        login = browser.post("/login", data={"username": "jason", "passwd": "whatever"})
        signed_in = browser.get("/" + login.headers["location"])
        logout = browser.get("/logout")
        after = browser.get("/productpage")
        refused = browser.post("/login", data={"username": "<b>x</b>", "passwd": ""})
        get_login = browser.get("/login")

    assert 'action="login"' in signed_out.text and "Signed in" not in signed_out.text
    assert login.status_code == 302 and login.headers["location"] == "productpage"
    assert "Signed in as <b>jason</b>" in signed_in.text
    assert logout.status_code == 302 and "Max-Age=0" in logout.headers["set-cookie"]
    assert "Signed in" not in after.text
    assert refused.status_code == 400 and "<b>x</b>" not in refused.text
    assert get_login.status_code == 405 and get_login.headers["allow"] == "POST"
    ends = [r["headers"].get("end-user") for r in details.requests]
    assert ends == [None, "jason", None]


def test_productpage_api_answers_as_bookinfo(launch, tmp_path: Path) -> None:
    dns = tmp_path / "dns.json"
    apps = _start_bookinfo(launch, dns, BOOKINFO_V2)
    url = apps["productpage-v1"].url

    products = _get(url + "/api/v1/products")
    product = _get(url + "/api/v1/products/0")
    reviews = _get(url + "/api/v1/products/0/reviews")
    ratings = _get(url + "/api/v1/products/0/ratings")
    page = _get(url + "/productpage")
    static = _get(url + "/static/tailwind/tailwind.css")
    unknown = _get(url + "/api/v2/products")
    apps["ratings-v1"].proc.kill()
    apps["ratings-v1"].proc.wait(timeout=10)
    no_ratings = _get(url + "/api/v1/products/0/ratings")

    assert [p["title"] for p in products.json()] == ["The Comedy of Errors"]
    assert product.json()["instance"] == "details-v1" and product.json()["ISBN-10"] == "1234567890"
    assert reviews.json()["instance"] == "reviews-v2" and len(reviews.json()["reviews"]) == 2
    assert ratings.json()["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}
    assert [c["service"] for c in page.json()["calls"]] == ["details", "reviews"]
    assert static.status_code == 404
    assert unknown.status_code == 404 and "/productpage, /, /api/v1/products[" in unknown.json()["error"]
    assert no_ratings.status_code == 500
    assert no_ratings.json() == {"error": "Sorry, product ratings are currently unavailable for this book."}
