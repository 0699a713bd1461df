"""The demo applications a lab deploys: Istio's Bookinfo and a small shop.

Bookinfo keeps Istio's names, versions, service accounts, paths and the
timeouts hard-coded in its sources, because the lessons follow Istio's tasks
and their surprises must happen here too. In Istio's delay task a 7 s delay on
ratings (for end-user jason) breaks the page although reviews-v2 waits 10 s:
productpage gives up on reviews after 3 s and one 3 s retry, about 6 s.

The shop is the shopping-mall story: a frontend that needs catalog and cart,
and a catalog-v2 canary that is slower and fails more often than v1.

A backend turns a WorkloadSpec into a running process with `app_spec(...)`,
the JSON that `python -m meshkit.demo --spec FILE` runs (docs/internals.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.names import dns_label_problem
from meshkit.demo.spec import DEFAULT_SERVICE_PORT, parse_spec
from meshkit.errors import ConfigError, UnknownWorkload

MAX_REPLICAS = 20


@dataclass(frozen=True)
class Latency:
    """A service's own processing time, as two quantiles (milliseconds)."""

    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Call:
    """A downstream call a service makes on every request it serves.

    `path` may hold `{id}`, filled with the product id of the request being
    served (Bookinfo passes it along: `/reviews/0` calls `/ratings/0`).
    `timeout_s` bounds each attempt; `retries` are extra attempts after a
    timeout, a connection failure or a 5xx, made at once as Bookinfo does.
    `port` is the callee's service port (9080 everywhere in both apps).
    """

    service: str
    path: str
    timeout_s: float
    retries: int = 0
    port: int = DEFAULT_SERVICE_PORT


@dataclass(frozen=True)
class WorkloadSpec:
    """One deployable version of a service.

    The fields after `replicas` extend the lead's API compatibly (all have
    defaults): `role` picks how the response body is composed (Bookinfo's
    services each have their own; "generic" nests the downstream answers),
    `paths` are the path templates served (empty means `/`, `/<service>` and
    `/<service>/{id}`), `concurrent_calls` makes the calls at once rather
    than in order, and `star_color` is a Bookinfo reviews version's stars.
    `gateway` makes the workload an ingress gateway: no app, only meshkit's
    proxy in gateway mode, on a loopback port a browser opens (INGRESS_GATEWAY).
    """

    name: str
    service: str
    version: str
    service_account: str
    port: int = DEFAULT_SERVICE_PORT
    latency: Latency = Latency(2.0, 8.0)
    error_rate: float = 0.0
    calls: tuple[Call, ...] = ()
    replicas: int = 1
    role: str = "generic"
    paths: tuple[str, ...] = ()
    concurrent_calls: bool = False
    star_color: str | None = None
    gateway: bool = False

    def __post_init__(self) -> None:
        """Reject a bad definition when it is written, not when it is deployed.

        A learner may define their own workload in a notebook; the message
        names the workload and the field. The process spec is checked by the
        same parser the demo process uses, so the two cannot disagree.
        """
        for field_name in ("name", "service", "service_account"):
            problem = dns_label_problem(getattr(self, field_name))
            if problem:
                raise ConfigError("WorkloadSpec", str(self.name), field_name, problem)
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ConfigError("WorkloadSpec", self.name, "port", f"must be 1..65535, not {self.port!r}")
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) \
                or not 1 <= self.replicas <= MAX_REPLICAS:
            raise ConfigError("WorkloadSpec", self.name, "replicas",
                              f"must be a whole number from 1 to {MAX_REPLICAS}, not {self.replicas!r}")
        try:
            parse_spec(self.app_spec(namespace="default", host="127.0.0.1", port=0, resolver=None),
                       source=self.name)
        except ConfigError as exc:
            raise ConfigError("WorkloadSpec", self.name, exc.path, exc.reason) from exc

    @property
    def labels(self) -> dict[str, str]:
        """The pod labels Istio's samples use to select versions; a gateway's, its Gateways' selector."""
        if self.gateway:
            return {"app": self.service, "istio": GATEWAY_SELECTOR_VALUE}
        return {"app": self.service, "version": self.version}

    def app_spec(self, *, namespace: str, host: str, port: int, resolver: str | None) -> dict[str, object]:
        """The JSON spec for one process of this workload (docs/internals.md)."""
        spec: dict[str, object] = {
            "service": self.service,
            "version": self.version,
            "namespace": namespace,
            "host": host,
            "port": port,
            "latency_ms": {"p50": self.latency.p50_ms, "p99": self.latency.p99_ms},
            "error_rate": self.error_rate,
            "calls": [
                {"service": c.service, "path": c.path, "timeout_s": c.timeout_s,
                 "retries": c.retries, "port": c.port}
                for c in self.calls
            ],
            "resolver": resolver,
            "role": self.role,
            "concurrent_calls": self.concurrent_calls,
            "star_color": self.star_color,
        }
        if self.paths:
            spec["paths"] = list(self.paths)
        return spec


# Bookinfo: istio/istio samples/bookinfo. productpage.py calls details and then
# reviews, each with timeout=3.0, and tries reviews twice (its API route for a
# product's ratings calls ratings, also with 3 s); reviews'
# LibertyRestEndpoint.java calls ratings with a 10 s timeout when its stars are
# black (v2) and 2.5 s otherwise (v3); v1 does not call ratings at all.
_BOOKINFO_LATENCY = Latency(1.0, 4.0)

BOOKINFO: tuple[WorkloadSpec, ...] = (
    WorkloadSpec(
        name="productpage-v1", service="productpage", version="v1",
        service_account="bookinfo-productpage", latency=Latency(2.0, 8.0),
        calls=(Call("details", "/details/{id}", timeout_s=3.0),
               Call("reviews", "/reviews/{id}", timeout_s=3.0, retries=1),
               Call("ratings", "/ratings/{id}", timeout_s=3.0)),  # only its API route /api/v1/products/<id>/ratings
        role="productpage", paths=("/productpage", "/"),
    ),
    WorkloadSpec(
        name="details-v1", service="details", version="v1",
        service_account="bookinfo-details", latency=_BOOKINFO_LATENCY,
        role="details", paths=("/details/{id}",),
    ),
    WorkloadSpec(
        name="reviews-v1", service="reviews", version="v1",
        service_account="bookinfo-reviews", latency=_BOOKINFO_LATENCY,
        role="reviews", paths=("/reviews/{id}",),
    ),
    WorkloadSpec(
        name="reviews-v2", service="reviews", version="v2",
        service_account="bookinfo-reviews", latency=_BOOKINFO_LATENCY,
        calls=(Call("ratings", "/ratings/{id}", timeout_s=10.0),),
        role="reviews", paths=("/reviews/{id}",), star_color="black",
    ),
    WorkloadSpec(
        name="reviews-v3", service="reviews", version="v3",
        service_account="bookinfo-reviews", latency=_BOOKINFO_LATENCY,
        calls=(Call("ratings", "/ratings/{id}", timeout_s=2.5),),
        role="reviews", paths=("/reviews/{id}",), star_color="red",
    ),
    WorkloadSpec(
        name="ratings-v1", service="ratings", version="v1",
        service_account="bookinfo-ratings", latency=_BOOKINFO_LATENCY,
        role="ratings", paths=("/ratings/{id}",),
    ),
)

# The shop: no app-level retries, so every retry a learner sees is the mesh's.
SHOP: tuple[WorkloadSpec, ...] = (
    WorkloadSpec(
        name="frontend-v1", service="frontend", version="v1",
        service_account="shop-frontend", latency=Latency(2.0, 8.0),
        calls=(Call("catalog", "/catalog", timeout_s=2.0), Call("cart", "/cart", timeout_s=2.0)),
        paths=("/",), concurrent_calls=True,
    ),
    WorkloadSpec(
        name="catalog-v1", service="catalog", version="v1",
        service_account="shop-catalog", latency=Latency(3.0, 12.0), paths=("/catalog",),
    ),
    WorkloadSpec(
        name="catalog-v2", service="catalog", version="v2",
        service_account="shop-catalog", latency=Latency(40.0, 250.0), error_rate=0.2,
        paths=("/catalog",),
    ),
    WorkloadSpec(
        name="cart-v1", service="cart", version="v1",
        service_account="shop-cart", latency=Latency(2.0, 8.0),
        calls=(Call("inventory", "/inventory", timeout_s=1.0), Call("payment", "/payment", timeout_s=1.0)),
        paths=("/cart",),
    ),
    WorkloadSpec(
        name="payment-v1", service="payment", version="v1",
        service_account="shop-payment", latency=Latency(5.0, 20.0), paths=("/payment",),
    ),
    WorkloadSpec(
        name="inventory-v1", service="inventory", version="v1",
        service_account="shop-inventory", latency=Latency(1.0, 4.0), paths=("/inventory",),
    ),
)

APPS: dict[str, tuple[WorkloadSpec, ...]] = {"bookinfo": BOOKINFO, "shop": SHOP}

GATEWAY_NAMESPACE = "istio-system"
"""Where Istio installs its ingress gateway (and meshkit's root namespace)."""
GATEWAY_SELECTOR_VALUE = "ingressgateway"
GATEWAY_PORTS = (8080, 80)
"""The Gateway server ports the ingress gateway's listener stands for: Istio's
istio-ingressgateway listens on container port 8080, which its Service
exposes as port 80, and istiod accepts either number in a Gateway
(bookinfo-gateway.yaml says 8080). On the local backend both mean the
lab's loopback ingress port."""

INGRESS_GATEWAY = WorkloadSpec(
    name="istio-ingressgateway", service="istio-ingressgateway", version="unknown",
    service_account="istio-ingressgateway-service-account", port=80, gateway=True,
)
"""Istio's ingress gateway by its names: workload and labels `app: istio-ingressgateway`,
`istio: ingressgateway`, service account istio-ingressgateway-service-account
(its version label is absent, so telemetry says unknown, as Istio's does)."""


def get_app(name: str) -> tuple[WorkloadSpec, ...]:
    """The workloads of a demo app, or UnknownWorkload naming the known apps."""
    try:
        return APPS[name]
    except (KeyError, TypeError) as exc:
        raise UnknownWorkload(f"no demo app {name!r}; known apps: {', '.join(sorted(APPS))}") from exc
