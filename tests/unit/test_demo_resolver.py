"""The resolver file: Kubernetes-style names, atomic writes, re-reads, turns."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meshkit.demo.resolver import Resolver, parse_resolver, qualify, read_resolver, write_resolver
from meshkit.errors import ConfigError, UnknownWorkload


@pytest.mark.parametrize(("name", "expected"), [
    ("reviews", "reviews.default.svc.cluster.local"),
    ("reviews.prod", "reviews.prod.svc.cluster.local"),
    ("reviews.prod.svc", "reviews.prod.svc.cluster.local"),
    ("reviews.prod.svc.cluster.local", "reviews.prod.svc.cluster.local"),
    ("Reviews.Prod.svc.cluster.local.", "reviews.prod.svc.cluster.local"),
    ("api.example.com", "api.example.com"),
])
def test_names_resolve_as_kubernetes_dns_does_from_namespace_default(name: str, expected: str) -> None:
    assert qualify(name, "default") == expected


def test_write_then_read_round_trips_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dns.json"
    mapping = {"reviews.default.svc.cluster.local": [("127.0.0.1", 41234), ("127.0.0.1", 41240)]}

    write_resolver(target, mapping)

    assert json.loads(target.read_text()) == {"reviews.default.svc.cluster.local":
                                              [["127.0.0.1", 41234], ["127.0.0.1", 41240]]}
    assert read_resolver(target) == {"reviews.default.svc.cluster.local":
                                     (("127.0.0.1", 41234), ("127.0.0.1", 41240))}
    assert os.listdir(tmp_path) == ["dns.json"]


def test_write_replaces_the_file_rather_than_rewriting_it_in_place(tmp_path: Path) -> None:
    target = tmp_path / "dns.json"
    write_resolver(target, {"a.default.svc.cluster.local": [("127.0.0.1", 1)]})
    before = target.stat().st_ino
    write_resolver(target, {"a.default.svc.cluster.local": [("127.0.0.1", 2)]})
    assert target.stat().st_ino != before


@pytest.mark.parametrize(("doc", "reason"), [
    ([], "must be a JSON object"),
    ({"a": "127.0.0.1:1"}, "list of [address, port] pairs"),
    ({"a": [["127.0.0.1"]]}, "[address, port] pair"),
    ({"a": [["", 1]]}, "address must be a non-empty string"),
    ({"a": [["127.0.0.1", 0]]}, "port must be 1..65535"),
    ({"a": [["127.0.0.1", True]]}, "port must be 1..65535"),
])
def test_bad_resolver_documents_are_rejected_with_the_reason(doc: object, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_resolver(doc, source="dns.json")


def test_write_rejects_a_bad_mapping_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "dns.json"
    write_resolver(target, {"a.default.svc.cluster.local": [("127.0.0.1", 1)]})
    with pytest.raises(ConfigError, match="port must be"):
        write_resolver(target, {"a.default.svc.cluster.local": [("127.0.0.1", 99999)]})
    assert read_resolver(target) == {"a.default.svc.cluster.local": (("127.0.0.1", 1),)}


def test_resolver_takes_turns_and_sees_a_rewritten_file(tmp_path: Path) -> None:
    target = tmp_path / "dns.json"
    write_resolver(target, {"reviews.default.svc.cluster.local": [("127.0.0.1", 1), ("127.0.0.1", 2)]})
    resolver = Resolver(str(target), "default")

    assert [resolver.resolve("reviews")[1] for _ in range(4)] == [1, 2, 1, 2]
    write_resolver(target, {"reviews.default.svc.cluster.local": [("127.0.0.1", 3)]})
    assert resolver.resolve("reviews.default") == ("127.0.0.1", 3)


def test_resolver_names_what_is_missing(tmp_path: Path) -> None:
    target = tmp_path / "dns.json"
    write_resolver(target, {})
    with pytest.raises(UnknownWorkload, match="no endpoints for ratings.default.svc.cluster.local"):
        Resolver(str(target), "default").resolve("ratings")
    with pytest.raises(ConfigError, match="cannot read"):
        Resolver(str(tmp_path / "absent.json"), "default").resolve("ratings")
