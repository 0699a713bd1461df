"""Instance records: checks with field-named errors, port agreement, and the registry view."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.control.registry import check_instance, check_service_port, registry_view
from meshkit.errors import ConfigError

RECORD = {
    "instance": "reviews-v2-0", "workload": "reviews-v2", "namespace": "default", "service": "reviews",
    "service_port": 9080, "version": "v2", "service_account": "bookinfo-reviews",
    "labels": {"app": "reviews", "version": "v2"}, "address": "127.0.0.1", "port": 41234, "sidecar": True,
}


def with_(**changes: Any) -> dict[str, Any]:
    out = {**RECORD, **changes}
    return {k: v for k, v in out.items() if v is not MISSING}


MISSING = object()


def test_the_documented_record_is_accepted_unchanged() -> None:
    assert check_instance(dict(RECORD), "default", "reviews-v2-0") == RECORD


def test_names_come_from_the_url_when_the_body_omits_them_and_defaults_fill_in() -> None:
    minimal = {"workload": "client", "service_account": "client"}
    out = check_instance(minimal, "shop", "client-0")
    assert out["namespace"] == "shop" and out["instance"] == "client-0"
    assert out["service"] is None and out["port"] is None and out["sidecar"] is False and out["labels"] == {}


@pytest.mark.parametrize(
    "record, namespace, instance, path, reason",
    [
        ("nope", "default", "reviews-v2-0", "", "must be a mapping"),
        (with_(), "Default", "reviews-v2-0", "namespace", "not a valid name"),
        (with_(), "default", "x/y", "instance", "not a valid name"),
        (with_(instance="other-0"), "default", "reviews-v2-0", "instance", "does not match 'reviews-v2-0'"),
        (with_(namespace="shop"), "default", "reviews-v2-0", "namespace", "does not match 'default'"),
        (with_(workload=MISSING), "default", "reviews-v2-0", "workload", "required field is missing"),
        (with_(service_account="sa\nx"), "default", "reviews-v2-0", "service_account", "not a valid name"),
        (with_(colour="red"), "default", "reviews-v2-0", "colour", "unknown field"),
        (with_(version="v 2"), "default", "reviews-v2-0", "version", "not a valid label value"),
        (with_(labels={"app": 3}), "default", "reviews-v2-0", "labels.app", "must be a string, got number"),
        (with_(sidecar="yes"), "default", "reviews-v2-0", "sidecar", "true or false"),
        (with_(port=0), "default", "reviews-v2-0", "port", "not a port number"),
        (with_(port=65536), "default", "reviews-v2-0", "port", "not a port number"),
        (with_(port="41234"), "default", "reviews-v2-0", "port", "must be an integer, got string"),
        (with_(port=True), "default", "reviews-v2-0", "port", "must be an integer, got boolean"),
        (with_(service_port=MISSING), "default", "reviews-v2-0", "service_port", "required when service is set"),
        (with_(address="localhost"), "default", "reviews-v2-0", "address", "not an IP address"),
        (with_(service=None), "default", "reviews-v2-0", "service_port", "must be null when service is null"),
    ],
)
def test_bad_records_name_the_field(record: Any, namespace: str, instance: str, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_instance(record, namespace, instance)
    assert caught.value.kind == "Instance"
    assert caught.value.name == f"{namespace}/{instance}"
    assert caught.value.path == path
    assert reason in caught.value.reason


def test_instances_of_a_service_must_agree_on_its_port() -> None:
    existing = {"default/reviews-v1-0": {**RECORD, "instance": "reviews-v1-0", "service_port": 9080}}
    with pytest.raises(ConfigError) as caught:
        check_service_port(existing, {**RECORD, "service_port": 9090})
    assert caught.value.path == "service_port" and "already uses port 9080" in caught.value.reason


def test_the_only_instance_of_a_service_may_change_its_port() -> None:
    check_service_port({"default/reviews-v2-0": RECORD}, {**RECORD, "service_port": 9090})


def test_the_registry_view_groups_instances_by_workload() -> None:
    second = {**RECORD, "instance": "reviews-v2-1", "port": 41240}
    other = {**RECORD, "instance": "ratings-v1-0", "workload": "ratings-v1", "service": "ratings"}
    view = registry_view({"default/reviews-v2-1": second, "default/reviews-v2-0": RECORD, "default/ratings-v1-0": other})
    assert [w["name"] for w in view["workloads"]] == ["ratings-v1", "reviews-v2"]
    assert [i["instance"] for i in view["workloads"][1]["instances"]] == ["reviews-v2-0", "reviews-v2-1"]
    assert view["workloads"][1]["service_account"] == "bookinfo-reviews"
    assert [i["instance"] for i in view["instances"]] == ["ratings-v1-0", "reviews-v2-0", "reviews-v2-1"]
