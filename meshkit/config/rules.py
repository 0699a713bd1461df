"""Rules beyond the schema that need nothing but the resource itself.

`resource_problems` yields what makes a resource invalid (load stops at the
first); `resource_warnings` yields what Istio accepts but that probably does
not do what was meant. Rules that need the lab (known services, other
DestinationRules) live in meshkit/config/context.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshkit.config.destination_rule import DestinationRule
from meshkit.config.gateway_api import GatewayAPIGateway, GatewayHTTPRoute
from meshkit.config.gateway_rules import gateway_api_gateway_problems, http_route_problems, http_route_warnings
from meshkit.config.policy_rules import authorization_policy_problems, local_rate_limit_problems
from meshkit.config.problems import Problem
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.routing_rules import (
    destination_rule_problems,
    destination_rule_warnings,
    virtual_service_problems,
    virtual_service_warnings,
)
from meshkit.config.schema import Resource
from meshkit.config.security import AuthorizationPolicy
from meshkit.config.virtual_service import VirtualService


def resource_problems(resource: Resource) -> Iterator[Problem]:
    if isinstance(resource, VirtualService):
        yield from virtual_service_problems(resource)
    elif isinstance(resource, DestinationRule):
        yield from destination_rule_problems(resource)
    elif isinstance(resource, AuthorizationPolicy):
        yield from authorization_policy_problems(resource)
    elif isinstance(resource, LocalRateLimit):
        yield from local_rate_limit_problems(resource)
    elif isinstance(resource, GatewayHTTPRoute):
        yield from http_route_problems(resource)
    elif isinstance(resource, GatewayAPIGateway):
        yield from gateway_api_gateway_problems(resource)


def resource_warnings(resource: Resource) -> Iterator[Problem]:
    if isinstance(resource, VirtualService):
        yield from virtual_service_warnings(resource)
    elif isinstance(resource, DestinationRule):
        yield from destination_rule_warnings(resource)
    elif isinstance(resource, GatewayHTTPRoute):
        yield from http_route_warnings(resource)
