"""What the local backend writes about an instance, as pure functions."""

from __future__ import annotations

import io

from meshkit.backends.local import dns_table, instance_record, spec_from_dict, spec_to_dict
from meshkit.cli import _headers
from meshkit.demo.apps import get_app
from meshkit.errors import LabError
from meshkit.progress import StatusLine

import pytest


def rec(spec_name: str, port: int, sidecar: bool = False, namespace: str = "default") -> dict:
    spec = next(s for s in get_app("bookinfo") if s.name == spec_name)
    return {"namespace": namespace, "instance": f"{spec_name}-0", "app": "bookinfo", "spec": spec_to_dict(spec), "port": port, "sidecar": sidecar}


def test_every_demo_spec_survives_the_trip_through_lab_json() -> None:
    for app in ("bookinfo", "shop"):
        for spec in get_app(app):
            assert spec_from_dict(spec_to_dict(spec)) == spec


def test_the_registry_record_keeps_the_endpoint_port_whatever_the_sidecar() -> None:
    without = instance_record(rec("reviews-v2", 40001))
    with_sidecar = instance_record(rec("reviews-v2", 40001, sidecar=True))
    assert without["port"] == with_sidecar["port"] == 40001
    assert (without["sidecar"], with_sidecar["sidecar"]) == (False, True)
    assert without["labels"] == {"app": "reviews", "version": "v2"}
    assert without["service_account"] == "bookinfo-reviews"


def test_dns_groups_endpoints_by_fully_qualified_service() -> None:
    table = dns_table(
        {
            "default/reviews-v1-0": rec("reviews-v1", 40001),
            "default/reviews-v2-0": rec("reviews-v2", 40002),
            "other/ratings-v1-0": rec("ratings-v1", 40003, namespace="other"),
        }
    )
    assert table == {
        "reviews.default.svc.cluster.local": [("127.0.0.1", 40001), ("127.0.0.1", 40002)],
        "ratings.other.svc.cluster.local": [("127.0.0.1", 40003)],
    }


def test_cli_headers_are_name_colon_value() -> None:
    assert _headers(["end-user: jason", "x-a:1"]) == {"end-user": "jason", "x-a": "1"}
    with pytest.raises(LabError, match="not 'Name: value'"):
        _headers(["nonsense"])


def test_status_line_rewrites_in_a_terminal_and_prints_lines_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    line = StatusLine(tty)
    line("starting 1/2")
    line("ok")
    line.done()
    assert tty.getvalue().startswith("\rstarting 1/2\rok")
    plain = io.StringIO()
    other = StatusLine(plain)
    other("a")
    other("a")
    other("b")
    assert plain.getvalue() == "a\nb\n"
