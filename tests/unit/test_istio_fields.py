"""Every field Istio has is one meshkit reads or one it refuses by name, never "unknown field".

A learner copies YAML from Istio's docs; a field meshkit lacks must read
"<field> is not supported in meshkit: <why>", because "unknown field" says
"you made a typo" and sends them hunting for one that is not there. So the
field list comes from Istio itself: tests/data/istio/crds.yaml holds the spec
schemas of Istio's published CRDs (tests/data/istio/README.md names the
source and commit), and every field path in them, through objects, arrays
(`[]`) and maps (`{}`), is held against meshkit's models in two ways:

- a walk of the models: the path is a model field there, or the model's
  UNSUPPORTED table refuses it (and nothing below a refused field is looked at);
- a tiny document setting just that field, validated as a learner's would be:
  a refused field is refused with its message at its exact path, and no field
  is ever called unknown. Enum values Istio lists are each tried the same way.

The reverse holds too: a field meshkit reads that Istio lacks is a typo in
our models, unless MESHKIT_ONLY names it with its reason.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import ValidationError

from meshkit.config.kinds import RESOURCE_CLASSES
from meshkit.config.problems import PathPart, format_path
from meshkit.config.reference import field_choices, model_fields
from meshkit.config.schema import IstioModel, Resource, unsupported_reason

CRD_FILE = Path(__file__).resolve().parents[1] / "data" / "istio" / "crds.yaml"
CRDS: dict[str, dict[str, Any]] = {
    crd["kind"]: crd for crd in yaml.safe_load_all(CRD_FILE.read_text(encoding="utf-8")) if crd
}
# The model meshkit reads each vendored kind with, matched by API group: the
# Kubernetes Gateway API has a Gateway too.
MODELS: dict[str, type[Resource]] = {
    kind: cls
    for kind, crd in CRDS.items()
    for cls in RESOURCE_CLASSES
    if cls.KIND == kind and f"{crd['group']}/{crd['version']}" in cls.API_VERSIONS
}
ITEM, VALUE = "[]", "{}"
MAP_KEY = "name"  # the key a tiny document uses for a map entry: a valid label, header and parameter name
IstioPath = tuple[str, ...]

# Paths meshkit knows that Istio's current CRDs lack, and why each is kept.
# Written as in the test ids: spec.http[].fault.abort.percent.
MESHKIT_ONLY: dict[tuple[str, str], str] = {
    ("VirtualService", "spec.http[].fault.abort.percent"): "a refusal, not a field: Istio removed it (reserved in "
    "its proto) but older samples still carry it, and the refusal points the learner to percentage",
}


def dotted(path: IstioPath) -> str:
    """spec.http[].match[].headers{}.exact: how the ids and MESHKIT_ONLY spell a path."""
    text = ""
    for part in path:
        text += part if part in (ITEM, VALUE) else (f".{part}" if text else part)
    return text


def istio_fields(schema: dict[str, Any], prefix: IstioPath) -> Iterator[tuple[IstioPath, dict[str, Any]]]:
    """Every named field below `schema`, through objects, array items and map values."""
    for name, node in schema.get("properties", {}).items():
        yield prefix + (name,), node
        yield from istio_fields_below(node, prefix + (name,))


def istio_fields_below(node: dict[str, Any], path: IstioPath) -> Iterator[tuple[IstioPath, dict[str, Any]]]:
    yield from istio_fields(node, path)
    if isinstance(node.get("items"), dict):
        yield from istio_fields_below(node["items"], path + (ITEM,))
    if isinstance(node.get("additionalProperties"), dict):
        yield from istio_fields_below(node["additionalProperties"], path + (VALUE,))


def bare(annotation: Any) -> Any:
    """The type under Annotated and Optional, which is what has fields, items or values."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        else:
            return annotation


def spec_annotation(cls: type[Resource]) -> Any:
    return cls.model_fields["spec"].annotation


@dataclass(frozen=True)
class Place:
    """Where an Istio path lands in meshkit's models, and how far the walk got."""

    found: Literal["field", "refused", "unknown", "wrong shape"]
    path: IstioPath
    annotation: Any = None
    why: str = ""


def place(cls: type[Resource], path: IstioPath) -> Place:
    """Follow `path` (starting at spec) through the kind's models."""
    annotation = spec_annotation(cls)
    for depth, part in enumerate(path[1:], start=2):
        here = bare(annotation)
        if part in (ITEM, VALUE):
            if get_origin(here) is not (list if part == ITEM else dict):
                return Place("wrong shape", path[:depth], here)
            annotation = get_args(here)[-1]
            continue
        if not (isinstance(here, type) and issubclass(here, IstioModel)):
            return Place("wrong shape", path[:depth], here)
        if part in here.UNSUPPORTED:
            return Place("refused", path[:depth], here, here.UNSUPPORTED[part])
        fields = dict(model_fields(here))
        if part not in fields:
            return Place("unknown", path[:depth], here)
        annotation = fields[part].annotation
    return Place("field", path, annotation)


def meshkit_fields(annotation: Any, prefix: IstioPath) -> Iterator[tuple[IstioPath, Any]]:
    """Every field and refusal of the models below `annotation`, with its annotation (None: refused)."""
    here = bare(annotation)
    if get_origin(here) in (list, dict):
        yield from meshkit_fields(get_args(here)[-1], prefix + (ITEM if get_origin(here) is list else VALUE,))
    elif isinstance(here, type) and issubclass(here, IstioModel):
        for name in here.UNSUPPORTED:
            yield prefix + (name,), None
        for alias, info in model_fields(here):
            yield prefix + (alias,), info
            yield from meshkit_fields(info.annotation, prefix + (alias,))


def concrete(path: IstioPath) -> tuple[PathPart, ...]:
    """The path a tiny document puts the field at: first item of each list, MAP_KEY in each map."""
    return tuple(0 if part == ITEM else MAP_KEY if part == VALUE else part for part in path)


def sample(node: dict[str, Any]) -> Any:
    """A value of the field's CRD type (its first enum value if it has some)."""
    if node.get("enum"):
        return node["enum"][0]
    return {"object": {}, "array": [], "string": "x", "integer": 1, "number": 1.5, "boolean": True}[node["type"]]


def tiny_document(path: IstioPath, value: Any) -> dict[str, Any]:
    """A resource whose spec sets only `value` at `path`: just enough to reach the field."""
    built: Any = value
    for part in reversed(concrete(path)[1:]):
        built = [built] if part == 0 else {part: built}
    return {"metadata": {"name": "tiny"}, "spec": built}


def problems(cls: type[Resource], document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (path, reason) validation finds, where a learner's load would report the first."""
    try:
        cls.model_validate(document)
    except ValidationError as exc:
        found: list[tuple[str, str]] = []
        for detail in exc.errors():
            context = detail.get("ctx") or {}
            loc = tuple(detail["loc"]) + ((context["field"],) if "field" in context else ())
            found.append((format_path(loc), str(context.get("reason", detail["msg"]))))
        return found
    return []


def cases() -> Iterator[tuple[str, IstioPath, dict[str, Any]]]:
    """(kind, path, CRD node) for each Istio field not below one meshkit refuses (or lacks)."""
    for kind, cls in MODELS.items():
        stopped: list[IstioPath] = []
        for path, node in istio_fields(CRDS[kind]["spec"], ("spec",)):
            if any(path[: len(stop)] == stop for stop in stopped):
                continue
            found = place(cls, path)
            if found.found != "field":
                stopped.append(found.path)
            yield kind, path, node


CASES = list(cases())
CASE_IDS = [f"{kind}:{dotted(path)}" for kind, path, _ in CASES]
ENUM_CASES = [case for case in CASES if case[2].get("enum") and place(MODELS[case[0]], case[1]).found == "field"]


def test_the_vendored_crds_cover_every_istio_kind_meshkit_reads() -> None:
    istio_models = {cls for cls in RESOURCE_CLASSES if any(".istio.io/" in version for version in cls.API_VERSIONS)}
    assert istio_models <= set(MODELS.values()), "add the kind to tests/data/istio/trim_crds.py; regenerate crds.yaml"
    walked = {(kind, dotted(path)) for kind, path, _ in CASES}
    for through_objects_arrays_and_maps in (
        ("VirtualService", "spec.http[].retries.retryOn"),
        ("VirtualService", "spec.http[].match[].headers{}.exact"),
        ("DestinationRule", "spec.subsets[].trafficPolicy.connectionPool.http.http2KeepAlive"),
        ("AuthorizationPolicy", "spec.rules[].from[].source.principals"),
    ):
        assert through_objects_arrays_and_maps in walked


@pytest.mark.parametrize(("kind", "path", "node"), CASES, ids=CASE_IDS)
def test_every_istio_field_is_a_model_field_or_refused_by_name(kind: str, path: IstioPath, node: Any) -> None:
    found = place(MODELS[kind], path)
    where = getattr(found.annotation, "__name__", found.annotation)
    assert found.path == path, f"{dotted(found.path)}: {found.found} (in {where})"
    assert found.found in ("field", "refused"), f"{dotted(path)} is Istio's: a field of {where} or in its UNSUPPORTED"


@pytest.mark.parametrize(("kind", "path", "node"), CASES, ids=CASE_IDS)
def test_a_document_setting_the_field_is_refused_at_its_path_or_not_at_all(
    kind: str, path: IstioPath, node: dict[str, Any]
) -> None:
    cls = MODELS[kind]
    found = problems(cls, tiny_document(path, sample(node)))
    assert not [reason for _, reason in found if "unknown field" in reason], found
    here = place(cls, path)
    where = format_path(concrete(path))
    if here.found == "refused":
        assert (where, unsupported_reason(path[-1], here.why)) in found
    else:
        assert not [reason for at, reason in found if at == where and "not supported in meshkit" in reason]


@pytest.mark.parametrize(("kind", "path", "node"), ENUM_CASES, ids=[f"{k}:{dotted(p)}" for k, p, _ in ENUM_CASES])
def test_every_istio_enum_value_is_accepted_or_refused_by_name(
    kind: str, path: IstioPath, node: dict[str, Any]
) -> None:
    where = format_path(concrete(path))
    for value in node["enum"]:
        at_field = [reason for at, reason in problems(MODELS[kind], tiny_document(path, value)) if at == where]
        refused = [reason for reason in at_field if reason.startswith(f"{value} is not supported in meshkit: ")]
        assert at_field == refused and len(refused) <= 1, (value, at_field)


@pytest.mark.parametrize("kind", list(MODELS))
def test_meshkit_has_no_field_istio_lacks_but_the_listed_ones(kind: str) -> None:
    istio = {path for path, _ in istio_fields(CRDS[kind]["spec"], ("spec",))}
    ours = {dotted(path) for path, _ in meshkit_fields(spec_annotation(MODELS[kind]), ("spec",)) if path not in istio}
    assert ours == {path for listed, path in MESHKIT_ONLY if listed == kind}


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_enum_value_meshkit_names_is_one_istio_has(kind: str) -> None:
    nodes = dict(istio_fields(CRDS[kind]["spec"], ("spec",)))
    for path, info in meshkit_fields(spec_annotation(MODELS[kind]), ("spec",)):
        if info is None or "enum" not in nodes.get(path, {}):
            continue  # a refusal, or a string whose values Istio documents in prose only (a server's protocol)
        for rule in field_choices(info):
            named = set(rule.supported) | {value for value, _ in rule.unsupported}
            assert named <= set(nodes[path]["enum"]), f"{dotted(path)}: {named - set(nodes[path]['enum'])}"
