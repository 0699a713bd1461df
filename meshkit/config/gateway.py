"""Gateway: which hosts and ports an ingress gateway workload accepts traffic for.

Field names and meanings follow Istio's networking API
(https://istio.io/latest/docs/reference/config/networking/gateway/). A
Gateway only opens the door: VirtualServices that name it in `gateways:`
say where the requests go. meshkit's gateway is its own proxy in gateway
mode (the workload `istio-ingressgateway` in istio-system, labels
`istio: ingressgateway`), serving plain HTTP/1.1; TLS termination and other
protocols are refused by name with the reason.

The checks live on the models (a Gateway needs nothing from the lab), so a
refusal names its field: `spec.servers[0].hosts[1]: ...`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, field_validator

from meshkit.config.schema import NETWORKING_API_VERSIONS, Choice, IstioModel, Labels, Resource, invalid
from meshkit.names import dns_label_problem, dns_subdomain_problem

NO_TLS = "meshkit's gateway serves plain HTTP only; TLS termination (HTTPS servers, tls settings) is not implemented"
NO_OTHER_PROTOCOLS = "meshkit's gateway routes HTTP/1.1 only"
Protocol = Annotated[
    str,
    Choice(
        ("HTTP",),
        (
            ("HTTPS", NO_TLS),
            ("TLS", NO_TLS),
            ("HTTP2", NO_OTHER_PROTOCOLS + "; write protocol: HTTP"),
            ("GRPC", NO_OTHER_PROTOCOLS + "; gRPC needs HTTP/2"),
            ("GRPC-WEB", NO_OTHER_PROTOCOLS),
            ("TCP", NO_OTHER_PROTOCOLS + "; TCP routes are not implemented"),
            ("MONGO", NO_OTHER_PROTOCOLS),
        ),
    ),
]


def gateway_host_problem(host: str) -> str | None:
    """Why `host` cannot be a Gateway server host (`[namespace/]dnsName`), or None.

    The namespace part says whose VirtualServices may bind to this server:
    `*` any namespace, `.` the Gateway's own, or a namespace's name; no
    namespace means `*`. The name part is a host name, `*`, or a wildcard
    prefix such as `*.example.com`.
    """
    namespace, slash, name = host.rpartition("/")
    if slash and namespace not in ("*", ".") and (problem := dns_label_problem(namespace)):
        return f"namespace part of {host!r}: {problem} (or write * for any namespace, . for the Gateway's own)"
    return wildcard_host_problem(name)


def wildcard_host_problem(name: str) -> str | None:
    """Why `name` is not a host a gateway can match (`*`, `*.example.com`, `example.com`), or None."""
    if name == "*":
        return None
    plain = name[2:] if name.startswith("*.") else name
    if not plain or "*" in plain or len(plain) > 253 or any(
        not label or dns_label_problem(label) for label in plain.split(".")
    ):
        return (
            f"{name!r} is not a host a gateway can match: write a host name (bookinfo.example.com), "
            "a wildcard prefix (*.example.com) or * for every host; no port, no scheme"
        )
    return None


def _checked_host(value: str) -> str:
    if problem := gateway_host_problem(value):
        raise invalid(problem)
    return value


class Port(IstioModel):
    """The port a server listens on: the gateway workload's container port, as on Istio."""

    number: int = Field(
        ge=1,
        le=65535,
        description="The gateway's port, 8080 for Istio's ingress gateway (its Service maps 80 to it); "
        "on the local backend the lab's loopback ingress port stands for it.",
    )
    protocol: Protocol = Field(description="HTTP (the only protocol meshkit's gateway serves).")
    name: str = Field(description="A name for the port, such as http.")
    target_port: int | None = Field(
        default=None, ge=1, le=65535, description="Accepted and ignored: Istio uses it only for ServiceEntries."
    )


class Server(IstioModel):
    """One port of the gateway and the hosts it accepts there."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "tls": NO_TLS,
        "bind": "the gateway listens on the lab's loopback address; it cannot bind elsewhere",
        "defaultEndpoint": "meshkit's gateway has no sidecar-style ingress listener; route with a VirtualService",
    }

    port: Port = Field(description="The port: number, protocol HTTP and a name.")
    hosts: list[Annotated[str, AfterValidator(_checked_host)]] = Field(
        description="Hosts accepted here, `[namespace/]host`: * (any host), *.example.com, bookinfo.example.com; "
        "the namespace part limits which namespaces' VirtualServices bind to it."
    )
    name: str | None = Field(default=None, description="A name for this server, shown in logs.")

    @field_validator("hosts")
    @classmethod
    def _some_hosts(cls, hosts: list[str]) -> list[str]:
        if not hosts:
            raise invalid("a server needs at least one host; write * to accept every host")
        return hosts


class GatewaySpec(IstioModel):
    """Which gateway workloads it configures, and the servers they open."""

    selector: Labels = Field(
        default_factory=dict,
        description="Labels of the gateway workloads it configures, in any namespace "
        "(istio: ingressgateway selects the lab's ingress gateway); none selects every gateway.",
    )
    servers: list[Server] = Field(description="The ports the gateway opens and the hosts each accepts.")

    @field_validator("servers")
    @classmethod
    def _some_servers(cls, servers: list[Server]) -> list[Server]:
        if not servers:
            raise invalid("a Gateway needs at least one server: a port and the hosts it accepts")
        return servers


class Gateway(Resource):
    """networking.istio.io Gateway."""

    KIND: ClassVar[str] = "Gateway"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "networking.istio.io/v1"

    spec: GatewaySpec


def canonical_gateway(gateway: Gateway) -> dict[str, Any]:
    """The spec as sidecars get it: hosts split into (namespace, host), `.` read as the Gateway's namespace.

        {"selector": {label: value},
         "servers": [{"port": int, "name": str, "protocol": "HTTP",
                      "hosts": [{"namespace": "*" | ns, "host": "*" | "*.example.com" | name}]}]}
    """
    return {
        "selector": dict(gateway.spec.selector),
        "servers": [
            {
                "port": server.port.number,
                "name": server.name or server.port.name,
                "protocol": server.port.protocol,
                "hosts": [_server_host(host, gateway.namespace) for host in server.hosts],
            }
            for server in gateway.spec.servers
        ],
    }


def _server_host(host: str, own_namespace: str) -> dict[str, str]:
    namespace, slash, name = host.rpartition("/")
    if not slash:
        namespace = "*"
    elif namespace == ".":
        namespace = own_namespace
    return {"namespace": namespace, "host": name.lower()}


MESH = "mesh"
"""The reserved gateway name for every sidecar in the mesh."""


def gateway_reference_problem(reference: str) -> str | None:
    """Why a VirtualService's `gateways` entry names no Gateway (`mesh`, `name` or `namespace/name`), or None."""
    if reference == MESH:
        return None
    namespace, slash, name = reference.partition("/")
    if not slash:
        namespace, name = "", reference
    problem = (dns_label_problem(namespace) if slash else None) or dns_subdomain_problem(name)
    if problem:
        return (
            f"{reference!r} names no Gateway: write mesh (the sidecars), a Gateway's name (bookinfo-gateway) "
            f"or namespace/name (istio-system/bookinfo-gateway); {problem}"
        )
    return None


def qualified_gateways(references: list[str], namespace: str) -> list[str]:
    """`namespace/name` for each Gateway named (a bare name is in the VirtualService's namespace), `mesh` kept.

    An empty list means `mesh`, as Istio reads a VirtualService without `gateways`.
    """
    if not references:
        return [MESH]
    return [ref if ref == MESH or "/" in ref else f"{namespace}/{ref}" for ref in references]
