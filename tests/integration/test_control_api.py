"""The control plane's admin API against a real process: auth, registry, resources, bad input."""

from __future__ import annotations

import pytest

from meshkit.control.client import ControlClient
from meshkit.errors import ConfigError, ControlPlaneError, UnknownWorkload
from tests.integration.control_fixtures import VIRTUAL_SERVICE, ControlProcess, control, instance  # noqa: F401

ADMIN_GETS = ["/v1/status", "/v1/registry", "/v1/resources", "/v1/pushes", "/v1/snapshot/default/reviews-v1-0"]


def test_healthz_needs_no_token(control: ControlProcess) -> None:
    with control.http() as http:
        answer = http.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"ok": True, "version": 0}


@pytest.mark.parametrize("path", ADMIN_GETS)
def test_admin_calls_without_a_token_are_401(control: ControlProcess, path: str) -> None:
    with control.http() as http:
        answer = http.get(path)
    assert answer.status_code == 401
    assert "token" in answer.json()["error"]


def test_a_wrong_token_and_a_node_token_are_refused_on_admin_calls(control: ControlProcess) -> None:
    with control.client() as client:
        node_token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
    for token in ("wrong", node_token):
        with control.http(token) as http:
            assert http.get("/v1/status").status_code == 401
            assert http.put("/v1/resources/VirtualService/default/reviews", json=VIRTUAL_SERVICE).status_code == 401
    with ControlClient(control.url, "wrong") as client, pytest.raises(ControlPlaneError, match="refused the token"):
        client.status()


def test_sidecar_calls_need_the_token_of_the_node_they_name(control: ControlProcess) -> None:
    with control.client() as client:
        a = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
        b = client.put_instance(instance("reviews-v2-0", 41001))["node_token"]
    assert a != b
    poll = {"node": "default/reviews-v1-0", "version": "0", "wait": "0"}
    ack = {"node": "default/reviews-v1-0", "version": 2, "status": "ACK"}
    with control.http(b) as http:
        assert http.get("/v1/snapshot", params=poll).status_code == 401
        assert http.post("/v1/ack", json=ack).status_code == 401
    with control.http(a) as http:
        assert http.get("/v1/snapshot", params=poll).status_code == 200
        assert http.post("/v1/ack", json=ack).status_code == 200
    with control.http(control.token) as http:
        assert http.get("/v1/snapshot", params=poll).status_code == 200, "tooling may use the admin token"
    with control.http() as http:
        assert http.get("/v1/snapshot", params=poll).status_code == 401


def test_registry_put_is_idempotent_and_delete_revokes_the_node_token(control: ControlProcess) -> None:
    record = instance("reviews-v1-0", 41000)
    with control.client() as client:
        first = client.put_instance(record)
        again = client.put_instance(dict(record))
        assert first["version"] == again["version"] == 1
        assert first["node_token"] == again["node_token"]
        assert (first["changed"], again["changed"]) == (True, False)
        assert client.healthz()["version"] == 1
        assert client.registry()["instances"] == [record]
        assert client.registry()["workloads"][0]["name"] == "reviews-v1"

        moved = client.put_instance({**record, "port": 41005})
        assert moved["version"] == 2 and moved["node_token"] == first["node_token"]

        deleted = client.delete_instance("default", "reviews-v1-0")
        assert deleted == {"version": 3, "changed": True}
        assert client.delete_instance("default", "reviews-v1-0") == {"version": 3, "changed": False}
        assert client.registry() == {"workloads": [], "instances": []}
    with control.http(first["node_token"]) as http:
        answer = http.get("/v1/snapshot", params={"node": "default/reviews-v1-0", "wait": "0"})
    assert answer.status_code == 401


def test_an_invalid_record_is_422_naming_the_field(control: ControlProcess) -> None:
    with control.client() as client:
        with pytest.raises(ConfigError) as caught:
            client.put_instance(instance("reviews-v1-0", 70000))
        assert (caught.value.kind, caught.value.name, caught.value.path) == ("Instance", "default/reviews-v1-0", "port")
        assert "70000" in caught.value.reason
        assert client.healthz()["version"] == 0
    with control.http(control.token) as http:
        answer = http.put("/v1/registry/instances/default/reviews-v1-0", json={"workload": "reviews-v1"})
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "Instance 'default/reviews-v1-0' at service_account: required field is missing",
        "kind": "Instance", "name": "default/reviews-v1-0", "path": "service_account",
        "reason": "required field is missing",
    }


def test_resources_put_get_and_delete(control: ControlProcess) -> None:
    with control.client() as client:
        client.put_instance(instance("reviews-v1-0", 41000))
        assert client.put_resource(VIRTUAL_SERVICE) == {"version": 2, "changed": True, "warnings": []}
        assert client.put_resource(VIRTUAL_SERVICE) == {"version": 2, "changed": False, "warnings": []}
        assert client.resources() == [VIRTUAL_SERVICE]
        no_namespace = {**VIRTUAL_SERVICE, "metadata": {"name": "ratings"}}
        assert client.put_resource(no_namespace)["version"] == 3
        assert [r["metadata"] for r in client.resources()] == [
            {"name": "ratings", "namespace": "default"}, {"name": "reviews", "namespace": "default"}]
        assert client.delete_resource("VirtualService", "default", "reviews") == {"version": 4, "changed": True}
        assert client.delete_resource("VirtualService", "default", "reviews") == {"version": 4, "changed": False}
        assert len(client.resources()) == 1


def test_a_resource_is_validated_against_the_lab_and_a_rejection_changes_nothing(control: ControlProcess) -> None:
    """Istio's checks and the lab's references: an unknown host, an unknown
    subset and weights that do not sum to 100 are 422 with the field path."""
    with control.client() as client:
        with pytest.raises(ConfigError) as caught:
            client.put_resource(VIRTUAL_SERVICE)
        assert (caught.value.path, "no service 'reviews'" in caught.value.reason) == ("spec.hosts[0]", True)
        client.put_instance(instance("reviews-v1-0", 41000, labels={"app": "reviews", "version": "v1"}))
        split = {**VIRTUAL_SERVICE, "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": 20}]}]}}
        with pytest.raises(ConfigError) as caught:
            client.put_resource(split)
        assert caught.value.path.startswith("spec.http[0].route")
        version = client.healthz()["version"]
        split["spec"]["http"][0]["route"][1]["weight"] = 10
        with pytest.raises(ConfigError) as caught:
            client.put_resource(split)
        assert caught.value.path == "spec.http[0].route[0].destination.subset"
        assert "no subset 'v1'" in caught.value.reason
        assert client.resources() == [] and client.healthz()["version"] == version


def test_an_invalid_resource_is_422_with_its_field_path_and_changes_nothing(control: ControlProcess) -> None:
    with control.client() as client:
        with pytest.raises(ConfigError) as caught:
            client.put_resource({**VIRTUAL_SERVICE, "spec": ["not", "a", "mapping"]})
        assert (caught.value.kind, caught.value.name, caught.value.path) == ("VirtualService", "reviews", "spec")
        assert client.resources() == [] and client.healthz()["version"] == 0
    with control.http(control.token) as http:
        answer = http.put("/v1/resources/VirtualService/default/other", json=VIRTUAL_SERVICE)
    assert answer.status_code == 422
    assert answer.json()["path"] == "metadata.name" and "'other'" in answer.json()["reason"]


@pytest.mark.parametrize(
    "body, words",
    [
        pytest.param(b'{"workload": "a",', "not valid JSON", id="truncated"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\xff\xfe{}", "not UTF-8", id="utf-16 bom"),
        pytest.param(b'{"workload": NaN}', "NaN is not a JSON number", id="nan"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, "nested too deeply", id="deep"),
    ],
)
def test_malformed_json_is_400_naming_the_problem(control: ControlProcess, body: bytes, words: str) -> None:
    with control.http(control.token) as http:
        answer = http.put("/v1/registry/instances/default/a-0", content=body)
    assert answer.status_code == 400
    assert words in answer.json()["error"]


def test_unknown_paths_wrong_methods_and_huge_bodies(control: ControlProcess) -> None:
    with control.http(control.token) as http:
        missing = http.get("/v1/nothing-here")
        assert missing.status_code == 404 and "/v1/nothing-here" in missing.json()["error"]
        wrong = http.post("/v1/registry")
        assert wrong.status_code == 405 and "GET" in wrong.json()["error"]
        huge = http.put("/v1/resources/VirtualService/default/x", content=b"{" + b" " * (2 << 20) + b"}")
        assert huge.status_code == 413
        bad_query = http.get("/v1/pushes", params={"limit": "lots"})
        assert bad_query.status_code == 400 and "limit" in bad_query.json()["error"]
        assert http.get("/healthz").status_code == 200, "the server is still fine"


def test_the_admin_snapshot_shows_what_a_node_gets(control: ControlProcess) -> None:
    with control.client() as client:
        client.put_instance(instance("reviews-v1-0", 41000, sidecar=False))
        client.put_instance(instance("productpage-v1-0", 41010, service="productpage"))
        snapshot = client.snapshot("default", "productpage-v1-0")
        assert snapshot["version"] == 2 and snapshot["node"] == "default/productpage-v1-0"
        reviews = snapshot["services"]["reviews.default.svc.cluster.local"]
        assert reviews["port"] == 9080
        assert [(e["instance"], e["port"], e["sidecar"]) for e in reviews["endpoints"]] == [("reviews-v1-0", 41000, False)]
        with pytest.raises(UnknownWorkload, match="default/nope-0"):
            client.snapshot("default", "nope-0")


def test_an_unreachable_control_plane_is_one_clear_error(control: ControlProcess) -> None:
    url = control.url
    control.stop()
    with ControlClient(url, control.token, timeout=2.0) as client, pytest.raises(ControlPlaneError) as caught:
        client.healthz()
    assert str(caught.value).startswith(f"control plane at {url} is not reachable:")
    assert "\n" not in str(caught.value)
