"""Shared data for the config tests (no tests here): the Istio fixtures, Bookinfo's services, a dict editor."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from meshkit.config import ConfigContext, DestinationRule, load

FIXTURES = Path(__file__).parent / "fixtures" / "istio"
FIXTURE_FILES = sorted(path.name for path in FIXTURES.glob("*.yaml"))

BOOKINFO_SERVICES = {
    "productpage.default.svc.cluster.local": [{"app": "productpage", "version": "v1"}],
    "reviews.default.svc.cluster.local": [{"app": "reviews", "version": v} for v in ("v1", "v2", "v3")],
    "ratings.default.svc.cluster.local": [{"app": "ratings", "version": "v1"}],
    "details.default.svc.cluster.local": [{"app": "details", "version": "v1"}],
}


def bookinfo_context() -> ConfigContext:
    """Bookinfo deployed in namespace default, with Istio's destination-rule-all.yaml applied."""
    rules = [r for r in load(FIXTURES / "destination-rule-all.yaml") if isinstance(r, DestinationRule)]
    return ConfigContext(services=BOOKINFO_SERVICES, destination_rules=tuple(rules))


REVIEWS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews"},
    "spec": {
        "hosts": ["reviews"],
        "http": [
            {
                "match": [{"uri": {"prefix": "/reviews"}}],
                "route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "reviews", "subset": "v3"}, "weight": 10},
                ],
                "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 10}}},
            }
        ],
    },
}

EVERYTHING_VS = {
    "apiVersion": "networking.istio.io/v1alpha3",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "shop", "labels": {"app": "reviews"},
                 "annotations": {"note": "kitchen sink"}},
    "spec": {
        "hosts": ["reviews"],
        "gateways": ["mesh"],
        "http": [
            {
                "name": "canary",
                "match": [
                    {
                        "name": "jason",
                        "uri": {"regex": "/reviews/[0-9]+"},
                        "method": {"exact": "GET"},
                        "headers": {"end-user": {"exact": "jason"}, "x-canary": {}},
                        "withoutHeaders": {"x-skip": {"prefix": "yes"}},
                        "queryParams": {"debug": {"exact": "1"}},
                        "ignoreUriCase": True,
                        "port": 9080,
                        "sourceLabels": {"app": "productpage"},
                    }
                ],
                "route": [
                    {"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 75,
                     "headers": {"request": {"set": {"x-version": "v2"}}}},
                    {"destination": {"host": "reviews", "subset": "v3"}, "weight": 25},
                ],
                "rewrite": {"uri": "/v2/reviews"},
                "timeout": "1.5s",
                "retries": {"attempts": 3, "perTryTimeout": "300ms", "retryOn": "5xx,connect-failure,503"},
                "fault": {"delay": {"fixedDelay": "2m", "percentage": {"value": 0.5}},
                          "abort": {"httpStatus": 503, "percentage": {"value": 10}}},
                "mirror": {"host": "reviews", "subset": "v3"},
                "mirrorPercentage": {"value": 20},
                "headers": {"response": {"add": {"x-mesh": "meshkit"}, "remove": ["server"]}},
            }
        ],
    },
}
EVERYTHING_DR = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {
        "host": "reviews",
        "exportTo": ["*"],
        "trafficPolicy": {
            "loadBalancer": {"simple": "LEAST_CONN"},
            "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "250ms"},
                               "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 5,
                                        "maxRequestsPerConnection": 1, "maxRetries": 3}},
            "outlierDetection": {"consecutive5xxErrors": 3, "consecutiveGatewayErrors": 2, "interval": "5s",
                                 "baseEjectionTime": "1m", "maxEjectionPercent": 50},
            "tls": {"mode": "ISTIO_MUTUAL"},
        },
        "subsets": [{"name": "v2", "labels": {"version": "v2"},
                     "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}}}],
    },
}
RATE_LIMIT = {
    "apiVersion": "meshkit.dev/v1alpha1",
    "kind": "LocalRateLimit",
    "metadata": {"name": "slow-down"},
    "spec": {"selector": {"matchLabels": {"app": "ratings"}},
             "tokenBucket": {"maxTokens": 10, "tokensPerFill": 2, "fillInterval": "1s"}},
}

DELETE = object()
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def edited(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `doc` with the field at `path` (spec.http[0].route[1].weight) set or DELETEd."""
    result = copy.deepcopy(doc)
    parts: list[str | int] = [name if name else int(index) for name, index in _PART.findall(path)]
    target: Any = result
    for part in parts[:-1]:
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return result
