"""check_resource: accepted shapes and errors that name kind, name, field path and reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshkit.control.resources import ResourceKey, check_resource
from meshkit.errors import ConfigError

GOOD = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews.route", "namespace": "shop", "labels": {"app": "reviews"},
                 "annotations": {"note": "anything: at all, even spaces"}},
    "spec": {"hosts": ["reviews"]},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """GOOD with one field set (value ...) or removed (value is DELETE)."""
    obj = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = obj
    for part in parents:
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return obj


DELETE = object()


def test_a_well_formed_resource_gives_its_key() -> None:
    assert check_resource(GOOD) == ResourceKey("VirtualService", "shop", "reviews.route")
    assert check_resource(GOOD).text == "VirtualService/shop/reviews.route"


def test_the_namespace_defaults_to_default() -> None:
    assert check_resource(changed("metadata.namespace", DELETE)).namespace == "default"


@pytest.mark.parametrize(
    "obj, kind, name, path, reason",
    [
        (["not", "a", "mapping"], "resource", "?", "", "must be a mapping, got list"),
        (changed("apiVersion", DELETE), "VirtualService", "reviews.route", "apiVersion", "required field is missing"),
        (changed("apiVersion", 1), "VirtualService", "reviews.route", "apiVersion", "non-empty string, got number"),
        (changed("kind", DELETE), "resource", "reviews.route", "kind", "required field is missing"),
        (changed("kind", "virtual service"), "virtual service", "reviews.route", "kind", "not a kind"),
        (changed("metadata", "x"), "VirtualService", "?", "metadata", "must be a mapping, got string"),
        (changed("metadata.name", DELETE), "VirtualService", "?", "metadata.name", "required field is missing"),
        (changed("metadata.name", "Reviews"), "VirtualService", "Reviews", "metadata.name", "not a valid name"),
        (changed("metadata.name", "a\r\nb"), "VirtualService", "a\r\nb", "metadata.name", "not a valid name"),
        (changed("metadata.namespace", "a.b"), "VirtualService", "reviews.route", "metadata.namespace", "not a valid name"),
        (changed("metadata.uid", "1"), "VirtualService", "reviews.route", "metadata.uid", "unknown field"),
        (changed("metadata.labels", {"app": "a b"}), "VirtualService", "reviews.route", "metadata.labels.app",
         "not a valid label value"),
        (changed("metadata.labels", {"bad key!": "x"}), "VirtualService", "reviews.route", "metadata.labels.bad key!",
         "not a valid label key"),
        (changed("metadata.labels", []), "VirtualService", "reviews.route", "metadata.labels", "must be a mapping"),
        (changed("metadata.annotations", {"n": "a\x00b"}), "VirtualService", "reviews.route", "metadata.annotations.n",
         "control characters"),
        (changed("spec", DELETE), "VirtualService", "reviews.route", "spec", "required field is missing"),
        (changed("spec", ["hosts"]), "VirtualService", "reviews.route", "spec", "must be a mapping, got list"),
        (changed("status", {}), "VirtualService", "reviews.route", "status", "unknown field"),
    ],
)
def test_errors_name_the_resource_the_field_and_the_reason(obj: Any, kind: str, name: str, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_resource(obj)
    error = caught.value
    assert (error.kind, error.name, error.path) == (kind, name, path)
    assert reason in error.reason
    assert path in str(error) and reason in str(error)
