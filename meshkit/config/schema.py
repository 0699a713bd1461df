"""The building blocks every resource model is made of.

Models use Istio's camelCase field names as aliases (snake_case names work
too, for Python callers), are frozen (a loaded resource is a value, shared by
the store, the snapshot builder and the notebook without copies), and are
strict: YAML `weight: "50"` is a string, not a number, exactly as Istio's CRD
schema says.

Two kinds of field a learner may write are refused by name instead of being
called unknown:

- Istio fields meshkit does not implement are listed in each model's
  `UNSUPPORTED` (field -> why), so the learner reads "tcp is not supported in
  meshkit: ..." rather than "unknown field", and docs/config.md can list them
  with the exact message (meshkit/config/reference.py reads the same table).
- Istio enum values meshkit does not implement (tls mode SIMPLE, action
  CUSTOM) are listed in a `Choice`, which does the same for values.

Unknown fields are refused with the closest known name, since a typo
(`rouet`) is the usual cause. That is only honest if every field Istio has
is either a model field or in an UNSUPPORTED table: tests/unit/test_istio_fields.py
holds the models against Istio's published CRD schemas, field by field.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from meshkit.config.durations import DurationError, format_duration, parse_duration
from meshkit.names import dns_label_problem, dns_subdomain_problem, label_map_problem

DEFAULT_NAMESPACE = "default"
NETWORKING_API_VERSIONS = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
    "meshkit.dev/v1alpha1",
)
EXPORT_TO_IGNORED = "Accepted and ignored: every resource is visible to the whole lab."


def invalid(reason: str, field: str | int | None = None) -> PydanticCustomError:
    """A validation failure whose reason reaches the learner word for word.

    `field` names a key below the value being validated (a label key, say),
    so the reported path points at it rather than at the whole map.
    """
    context: dict[str, Any] = {"reason": reason}
    if field is not None:
        context["field"] = field
    return PydanticCustomError("meshkit", "{reason}", context)


class IstioModel(BaseModel):
    """Base of every model: Istio's field names, strict types, no silent extras."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        strict=True,
        frozen=True,
    )

    UNSUPPORTED: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def field_aliases(cls) -> list[str]:
        """The names a learner writes in YAML, in declaration order."""
        return [info.alias or name for name, info in cls.model_fields.items()]

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported_and_unknown(cls, data: Any) -> Any:
        """Name refused Istio fields and typos, where pydantic would only say "extra"."""
        if not isinstance(data, dict):
            return data
        aliases = cls.field_aliases()
        known = set(aliases) | set(cls.model_fields)
        for key in data:
            if key in cls.UNSUPPORTED:
                raise invalid(unsupported_reason(key, cls.UNSUPPORTED[key]), key)
            if key not in known:
                raise invalid(unknown_field_reason(key, aliases), key)
        return data

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Leave out unset fields so exported YAML reads like a hand-written one.

        Only this model's own fields are dropped: an empty value inside a map
        (a header match `end-user: {}`, which means "present") is kept.
        """
        data = handler(self)
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items() if value is not None and value != [] and value != {}}


def unsupported_reason(field: str, why: str) -> str:
    """The message for an Istio field meshkit refuses; docs/config.md quotes it."""
    return f"{field} is not supported in meshkit: {why}"


def unknown_field_reason(key: object, aliases: list[str]) -> str:
    """Name the field and the likeliest intended one."""
    close = difflib.get_close_matches(str(key), aliases, n=1) if isinstance(key, str) else []
    if close:
        return f"unknown field {key!r}; did you mean {close[0]!r}?"
    return f"unknown field {key!r}; fields here are: {', '.join(aliases)}"


@dataclass(frozen=True)
class Choice:
    """An Istio enum on a string field: `Annotated[str, Choice(...)]`.

    It names the values meshkit implements and the Istio values it refuses,
    each with the reason a learner is shown.
    """

    supported: tuple[str, ...]
    unsupported: tuple[tuple[str, str], ...] = ()

    def check(self, value: object) -> object:
        if isinstance(value, str) and value in self.supported:
            return value
        for name, why in self.unsupported:
            if value == name:
                raise invalid(unsupported_reason(name, why))
        raise invalid(f"must be one of {', '.join(self.supported)}, got {value!r}")

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))


@dataclass(frozen=True)
class TypeName:
    """How docs/config.md names a field type that is not a plain Python one."""

    text: str


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise invalid(str(exc)) from exc


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    TypeName("duration (e.g. 1.5s, 300ms, 2m)"),
]
"""Seconds in the model; an Istio duration string in YAML, both ways."""


class Percent(IstioModel):
    """Istio's Percent message: a share of requests, 0 to 100, fractions allowed."""

    value: float = Field(ge=0, le=100, description="Share of requests, 0 to 100 (0.1 means one in a thousand).")


def _checked_labels(value: dict[str, str], free_values: bool = False) -> dict[str, str]:
    if problem := label_map_problem(value, free_values=free_values):
        key, reason = problem
        raise invalid(reason, key or None)
    return value


def _checked_annotations(value: dict[str, str]) -> dict[str, str]:
    return _checked_labels(value, free_values=True)


Labels = Annotated[dict[str, str], AfterValidator(_checked_labels)]
"""A Kubernetes label map: selector keys and values (version: v1)."""

Annotations = Annotated[dict[str, str], AfterValidator(_checked_annotations)]
"""Kubernetes annotations: label keys, any text without control characters."""


class WorkloadSelector(IstioModel):
    """Which workloads in the resource's namespace a policy applies to."""

    match_labels: Labels = Field(
        default_factory=dict,
        description="Labels a workload must all have; none means every workload in the namespace.",
    )


def _checked_by(problem: Callable[[object], str | None]) -> AfterValidator:
    """A validator that refuses a value with the reason `problem` gives for it."""

    def check(value: str) -> str:
        if reason := problem(value):
            raise invalid(reason)
        return value

    return AfterValidator(check)


class ObjectMeta(IstioModel):
    """Kubernetes metadata: the resource's name and namespace, as kubectl reads them."""

    name: Annotated[str, _checked_by(dns_subdomain_problem)] = Field(
        description="The resource's name (DNS-1123: lowercase letters, digits, '-' and '.')."
    )
    namespace: Annotated[str, _checked_by(dns_label_problem)] = Field(
        default=DEFAULT_NAMESPACE,
        description="Namespace; short hosts in the resource are read relative to it. Defaults to default.",
    )
    labels: Labels = Field(default_factory=dict, description="Kubernetes labels; kept, not interpreted.")
    annotations: Annotations = Field(
        default_factory=dict, description="Kubernetes annotations; kept, not interpreted."
    )


class Resource(IstioModel):
    """One config resource: what the store keeps and the control plane compiles.

    apiVersion and kind are not fields: every accepted apiVersion of a kind has
    the same schema here, so a resource loaded from v1alpha3 YAML equals the
    same resource loaded from v1 (meshkit/config/kinds.py checks apiVersion).
    """

    KIND: ClassVar[str]
    API_VERSIONS: ClassVar[tuple[str, ...]]
    EXPORT_API_VERSION: ClassVar[str]

    metadata: ObjectMeta
    spec: IstioModel

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace
