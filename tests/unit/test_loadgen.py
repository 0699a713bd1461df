"""The load generator's pure parts: spec checks, request bytes, the frame and its summary."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshkit.errors import LabError
from meshkit.loadgen import LoadSpec, Result, error_counts, parse_args, plan, report, results_frame, summary

URL = "http://productpage:9080/productpage"


def head_lines(request: bytes) -> list[str]:
    head, _, _ = request.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n")


# ---------------------------------------------------------------- plan: addressing and request bytes


def test_direct_connects_to_the_url_and_sends_origin_form() -> None:
    p = plan(LoadSpec("http://127.0.0.1:8080/a/b?x=1#frag", rate=10))
    assert p.address == ("127.0.0.1", 8080)
    lines = head_lines(p.request)
    assert lines[0] == "GET /a/b?x=1 HTTP/1.1"
    assert lines[1] == "Host: 127.0.0.1:8080"


def test_proxy_connects_to_the_proxy_and_sends_absolute_form() -> None:
    p = plan(LoadSpec(URL, rate=10, proxy=("127.0.0.1", 15001)))
    assert p.address == ("127.0.0.1", 15001)
    assert head_lines(p.request)[:2] == ["GET http://productpage:9080/productpage HTTP/1.1", "Host: productpage:9080"]


def test_connect_to_sends_origin_form_with_the_url_host() -> None:
    p = plan(LoadSpec(URL, rate=10, connect_to=("127.0.0.1", 41234)))
    assert p.address == ("127.0.0.1", 41234)
    assert head_lines(p.request)[:2] == ["GET /productpage HTTP/1.1", "Host: productpage:9080"]


def test_default_port_and_path() -> None:
    p = plan(LoadSpec("http://example", rate=1))
    assert p.address == ("example", 80)
    assert head_lines(p.request)[:2] == ["GET / HTTP/1.1", "Host: example"]


def test_body_gets_a_content_length_and_headers_are_passed_through() -> None:
    p = plan(LoadSpec(URL, rate=1, method="POST", body=b"abc", headers={"x-user": "jason", "Host": "other"}))
    lines = head_lines(p.request)
    assert lines[0] == "POST /productpage HTTP/1.1"
    assert "x-user: jason" in lines and "Content-Length: 3" in lines
    assert [line for line in lines if line.lower().startswith("host:")] == ["Host: other"]
    assert p.request.endswith(b"\r\n\r\nabc")
    assert not p.retry_on_reused


def test_get_has_no_content_length_and_may_be_resent_on_a_stale_connection() -> None:
    p = plan(LoadSpec(URL, rate=1))
    assert not any(line.lower().startswith("content-length") for line in head_lines(p.request))
    assert p.retry_on_reused and not p.head


# ---------------------------------------------------------------- plan: how many requests


@pytest.mark.parametrize(
    ("rate", "duration", "requests", "total"),
    [(500, 10.0, None, 5000), (1, 2.5, None, 3), (0.5, 1.0, None, 1), (100, 10.0, 7, 7), (100, None, 7, 7)],
)
def test_total_requests(rate: float, duration: float | None, requests: int | None, total: int) -> None:
    assert plan(LoadSpec(URL, rate=rate, duration_s=duration, requests=requests)).total == total


# ---------------------------------------------------------------- plan: bad input names the field


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rate": 0}, "rate must be a finite number above 0"),
        ({"rate": -5}, "rate must be a finite number above 0"),
        ({"rate": math.inf}, "rate must be a finite number above 0"),
        ({"rate": "fast"}, "rate must be a number"),
        ({"rate": True}, "rate must be a number"),
        ({"duration_s": 0}, "duration_s must be a finite number above 0"),
        ({"duration_s": None}, "give duration_s or requests"),
        ({"requests": 0}, "requests must be between 1 and"),
        ({"requests": 2.5}, "requests must be a whole number"),
        ({"concurrency": 0}, "concurrency must be between 1 and"),
        ({"timeout_s": -1}, "timeout_s must be a finite number above 0"),
        ({"url": "https://a/"}, "scheme 'https' is not supported"),
        ({"url": "productpage:9080/x"}, "scheme 'productpage' is not supported"),
        ({"url": "/productpage"}, "scheme '(none)' is not supported"),
        ({"url": "http:///x"}, "has no host"),
        ({"url": "http://a:99999/"}, "is not valid"),
        ({"url": "http://a/x y"}, "whitespace or control characters"),
        ({"url": "http://a/x\r\nEvil: 1"}, "whitespace or control characters"),
        ({"url": "http://u:p@a/"}, "carries credentials"),
        ({"url": "http://a/caf\u00e9"}, "must be ASCII"),
        ({"url": ""}, "url must be a non-empty string"),
        ({"proxy": ("127.0.0.1", 0)}, "proxy must be (host, port)"),
        ({"proxy": ("127.0.0.1", "15001")}, "proxy must be (host, port)"),
        ({"connect_to": "127.0.0.1:80"}, "connect_to must be (host, port)"),
        ({"proxy": ("a", 1), "connect_to": ("b", 2)}, "cannot both be set"),
        ({"method": "GET /"}, "method 'GET /' is not a valid HTTP method"),
        ({"headers": {"bad name": "v"}}, "header name 'bad name' is not a valid HTTP token"),
        ({"headers": {"x": "a\r\nInjected: 1"}}, "without CR, LF or NUL"),
        ({"headers": {"x": "\u2603"}}, "cannot carry"),
        ({"headers": {"Content-Length": "5"}}, "set by the load generator"),
        ({"headers": {"transfer-encoding": "chunked"}}, "set by the load generator"),
        ({"headers": [("x", "y")]}, "headers must be a mapping"),
        ({"headers": {"Host": "a", "HOST": "b"}}, "header 'HOST' is given twice"),
        ({"body": "text"}, "body must be bytes"),
    ],
)
def test_bad_spec_is_a_lab_error_naming_the_field(change: dict[str, object], words: str) -> None:
    fields: dict[str, object] = {"url": URL, "rate": 10.0, **change}
    with pytest.raises(LabError, match="load spec: .*" + words.replace("(", r"\(").replace(")", r"\)")):
        plan(LoadSpec(**fields))  # type: ignore[arg-type]


def test_too_many_requests_is_refused_before_anything_is_allocated() -> None:
    with pytest.raises(LabError, match="above the limit"):
        plan(LoadSpec(URL, rate=1e6, duration_s=3600))


@given(
    url=st.one_of(st.text(max_size=40), st.builds(lambda t: "http://" + t, st.text(max_size=40))),
    method=st.text(max_size=8),
    headers=st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=3),
)
def test_any_spec_either_plans_to_a_well_formed_head_or_is_a_lab_error(
    url: str, method: str, headers: dict[str, str]
) -> None:
    try:
        p = plan(LoadSpec(url, rate=10, requests=1, method=method, headers=headers))
    except LabError as exc:
        assert str(exc).startswith("load spec: ")
        return
    head, sep, body = p.request.partition(b"\r\n\r\n")
    assert sep and body == b""
    lines = head.split(b"\r\n")
    assert len(lines[0].split(b" ")) == 3 and lines[0].endswith(b" HTTP/1.1")
    assert all(b":" in line and b"\n" not in line and b"\r" not in line and b"\0" not in line for line in lines[1:])
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert names.count(b"host") == 1 and len(names) == len(set(names))


# ---------------------------------------------------------------- results_frame and summary


def row(intended: float, sent: float, done: float, code: int = 200, error: str = "") -> Result:
    return Result(intended, sent, done, code, "-" if code else "", "v1" if code else "", 5 if code else 0, error)


def test_results_frame_columns_dtypes_and_times_from_start() -> None:
    df = results_frame([row(100.0, 100.001, 100.011), row(100.5, 100.6, 100.7, code=0, error="timeout")])
    assert list(df.columns) == [
        "intended_at", "sent_at", "latency_ms", "service_ms", "code", "flags", "version", "bytes", "error",
    ]  # fmt: skip
    for name in ("intended_at", "sent_at", "latency_ms", "service_ms"):
        assert df[name].dtype == "float64"
    for name in ("code", "bytes"):
        assert df[name].dtype == "int64"
    for name in ("flags", "version", "error"):
        assert pd.api.types.is_string_dtype(df[name])
    assert df.intended_at.tolist() == [0.0, 0.5]
    assert df.sent_at.round(6).tolist() == [0.001, 0.6]
    assert df.latency_ms.round(6).tolist() == [11.0, 200.0]
    assert df.service_ms.round(6).tolist() == [10.0, 100.0]
    assert df.code.tolist() == [200, 0] and df.error.tolist() == ["", "timeout"]
    assert df["flags"].tolist() == ["-", ""] and df["version"].tolist() == ["v1", ""]


def test_results_frame_of_nothing_has_the_columns_and_types() -> None:
    df = results_frame([])
    assert len(df) == 0 and df.code.dtype == "int64" and df.latency_ms.dtype == "float64"


def hand_made_frame() -> pd.DataFrame:
    """100 answered requests with latencies 1..100 ms (four of them 503), then two refused."""
    n = 100
    return pd.DataFrame(
        {
            "intended_at": [i * 0.01 for i in range(n)] + [1.0, 1.01],
            "sent_at": [i * 0.01 for i in range(n)] + [1.0, 1.01],
            "latency_ms": [float(i + 1) for i in range(n)] + [0.1, 0.1],
            "service_ms": [float(i + 1) for i in range(n)] + [0.1, 0.1],
            "code": [503 if i % 25 == 0 else 200 for i in range(n)] + [0, 0],
            "flags": [""] * (n + 2),
            "version": [""] * (n + 2),
            "bytes": [5] * n + [0, 0],
            "error": [""] * n + ["refused", "refused"],
        }
    )


def test_summary_numbers() -> None:
    s = summary(hand_made_frame())
    assert s["count"] == 102
    assert s["errors"] == 2
    assert s["success_rate"] == pytest.approx(96 / 102)
    # Percentiles over the 100 answered rows only (linear interpolation).
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01)
    # Last completion: row 99 sent at 0.99 s took 100 ms -> 1.09 s after the first intended send.
    assert s["rps"] == pytest.approx(102 / 1.09)


def test_summary_of_no_rows_and_of_no_answers() -> None:
    empty = summary(results_frame([]))
    assert empty["count"] == 0 and empty["rps"] == 0.0 and empty["errors"] == 0 and math.isnan(empty["p50_ms"])
    failed = summary(results_frame([row(1.0, 1.0, 1.5, code=0, error="timeout")]))
    assert failed["count"] == 1 and failed["errors"] == 1 and failed["success_rate"] == 0.0
    assert math.isnan(failed["p99_ms"]) and failed["rps"] == pytest.approx(2.0)


def test_error_counts_and_report() -> None:
    timeout = "timeout after 0.1 s"
    rows = [row(0, 0, 0.001), row(0.1, 0.1, 0.2, 0, timeout), row(0.2, 0.2, 0.3, 0, timeout)]
    assert error_counts(rows) == {"timeout after 0.1 s": 2}
    text = report(rows, as_json=False)
    assert "requests 3" in text and "errors 2" in text and "2 x timeout after 0.1 s" in text
    assert json.loads(report([], as_json=True))["p50_ms"] is None


# ---------------------------------------------------------------- command line


def test_parse_args_builds_the_spec() -> None:
    spec, as_json = parse_args(
        [URL, "--rate", "500", "--duration", "3", "--proxy", "127.0.0.1:15001", "-H", "x-user: jason",
         "--concurrency", "8", "-X", "POST", "--data", "hi", "--timeout", "2", "--json"]
    )  # fmt: skip
    assert as_json
    assert spec == LoadSpec(
        URL, rate=500.0, duration_s=3.0, concurrency=8, proxy=("127.0.0.1", 15001),
        method="POST", headers={"x-user": "jason"}, body=b"hi", timeout_s=2.0,
    )  # fmt: skip


def test_parse_args_connect_to_with_ipv6_brackets() -> None:
    spec, _ = parse_args([URL, "--rate", "1", "--requests", "2", "--connect-to", "[::1]:9080"])
    assert spec.connect_to == ("::1", 9080) and spec.requests == 2


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([URL, "--rate", "1"], "one of the arguments --duration --requests is required"),
        ([URL, "--rate", "0", "--requests", "1"], "rate must be a finite number above 0"),
        ([URL, "--rate", "1", "--requests", "1", "--proxy", "nope"], "--proxy 'nope': expected HOST:PORT"),
        ([URL, "--rate", "1", "--requests", "1", "-H", "novalue"], "expected 'Name: value'"),
    ],
)
def test_parse_args_rejects_bad_input_with_the_reason(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err
