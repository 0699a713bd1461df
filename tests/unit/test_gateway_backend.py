"""The ingress gateway as the local backend records it: a proxy with no app, no service and Istio's names."""

from __future__ import annotations

from typing import Any

from meshkit.backends.local import dns_table, instance_record, is_gateway, spec_from_dict, spec_to_dict
from meshkit.demo.apps import BOOKINFO, GATEWAY_NAMESPACE, INGRESS_GATEWAY
from meshkit.security.identity import DEFAULT_TRUST_DOMAIN, Identity


def rec(spec: Any, namespace: str, port: int) -> dict[str, Any]:
    return {"namespace": namespace, "instance": f"{spec.name}-0", "app": "x", "spec": spec_to_dict(spec),
            "port": port, "sidecar": True}


GATEWAY = rec(INGRESS_GATEWAY, GATEWAY_NAMESPACE, 41000)
PRODUCTPAGE = rec(BOOKINFO[0], "default", 41001)


def test_the_gateway_has_istios_names_labels_and_identity() -> None:
    assert (INGRESS_GATEWAY.name, GATEWAY_NAMESPACE) == ("istio-ingressgateway", "istio-system")
    assert INGRESS_GATEWAY.labels == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    identity = Identity(DEFAULT_TRUST_DOMAIN, GATEWAY_NAMESPACE, INGRESS_GATEWAY.service_account)
    assert str(identity) == "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


def test_the_gateway_registers_as_a_caller_without_a_service() -> None:
    record = instance_record(GATEWAY)
    assert (record["service"], record["service_port"], record["address"], record["port"]) == (None, None, None, None)
    assert record["labels"]["istio"] == "ingressgateway" and record["sidecar"] is True
    assert instance_record(PRODUCTPAGE)["service"] == "productpage"


def test_dns_leaves_the_gateway_out_and_its_spec_survives_a_round_trip() -> None:
    table = dns_table({"a": GATEWAY, "b": PRODUCTPAGE})
    assert list(table) == ["productpage.default.svc.cluster.local"]
    assert is_gateway(GATEWAY) and not is_gateway(PRODUCTPAGE)
    assert spec_from_dict(spec_to_dict(INGRESS_GATEWAY)) == INGRESS_GATEWAY
