"""Istio-shaped config: load it, check it, export it, hand it to sidecars.

meshkit reads Istio's own resource shapes (DESIGN.md, "Config language"), so
what a learner writes here works on Istio and what they read in Istio's docs
works here. docs/config.md lists every supported field and every refused one
with the message a learner gets.

    load(source)               path, YAML text, dict or list of dicts -> [Resource]
    validate(resource, ctx)    + checks against the lab -> Validated(resource, warnings)
    validate_all(resources, ctx)  the same for resources applied together
    canonical(resource)        JSON-ready form for sidecar snapshots
    to_istio_yaml(resources)   YAML for a real Istio cluster

Every rejection is a ConfigError(kind, name, path, reason).

    durations.py  regexes.py  hosts.py  checks.py   value rules
    schema.py                                       base model, shared types
    virtual_service.py  destination_rule.py
    security.py  rate_limit.py  gateway.py
    gateway_api.py                                  the models, one file per API
    gateway_translation.py                          Gateway API kinds as their Istio equivalents
    kinds.py                                        (group, kind) and apiVersion -> model
    problems.py                                     field paths, pydantic errors in plain words
    routing_rules.py  policy_rules.py  gateway_rules.py
    rules.py                                        checks a schema cannot express
    loading.py  context.py  canonical.py  export.py the public operations
    reference.py                                    docs/config.md tables from the models
"""

from __future__ import annotations

from meshkit.config.canonical import canonical, default_retries, default_traffic_policy
from meshkit.config.context import ConfigContext, ConfigWarning, Validated, validate, validate_all
from meshkit.config.destination_rule import DestinationRule
from meshkit.config.gateway_api import GatewayAPIGateway, GatewayHTTPRoute
from meshkit.config.export import to_istio_yaml, to_manifest
from meshkit.config.kinds import KINDS
from meshkit.config.loading import load, parse
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.schema import Resource
from meshkit.config.security import AuthorizationPolicy, PeerAuthentication
from meshkit.config.virtual_service import VirtualService

__all__ = [
    "KINDS",
    "AuthorizationPolicy",
    "ConfigContext",
    "ConfigWarning",
    "DestinationRule",
    "GatewayAPIGateway",
    "GatewayHTTPRoute",
    "LocalRateLimit",
    "PeerAuthentication",
    "Resource",
    "Validated",
    "VirtualService",
    "canonical",
    "default_retries",
    "default_traffic_policy",
    "load",
    "parse",
    "to_istio_yaml",
    "to_manifest",
    "validate",
    "validate_all",
]
