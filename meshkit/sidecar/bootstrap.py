"""The file a sidecar starts from (docs/internals.md, "Sidecar bootstrap").

Read once at start-up; anything wrong in it stops the sidecar with a
ConfigError naming the field, before a port is opened.

meshkit extends the documented shape with one optional key, `limits`, whose
fields all have defaults (see `Limits`). A port of 0 asks the system for a
free port; the sidecar then logs the port it got (tests use this).

`gateway` (optional) makes the proxy an ingress gateway: `{"ports": [8080, 80]}`,
the Gateway server ports its outbound listener stands for. It has no app
(`inbound` must be null); it takes plain HTTP from outside the mesh with any
Host and routes it with the VirtualServices bound to the Gateways that select
its workload (meshkit.core.routes.compile_gateway_routes).

`admin.token` (optional, 16 characters or more): the bearer token the admin
pages other than /ready and /stats/prometheus require (the lab gives its
control plane's admin token); without it those pages stay closed.

`static_identity` (optional, only beside a static snapshot) gives a sidecar
a certificate without a CA (see `StaticIdentity`). The workload's namespace
and service account must make a valid SPIFFE ID (meshkit.security.identity):
it is the identity the sidecar asks the CA for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from meshkit.errors import ConfigError
from meshkit.security.errors import InvalidIdentity
from meshkit.security.identity import DEFAULT_TRUST_DOMAIN, Identity

_KEYS = ("node", "workload", "host", "inbound", "outbound", "admin", "control_plane", "static_snapshot", "limits", "telemetry", "static_identity", "gateway")


@dataclass(frozen=True, slots=True)
class Workload:
    """The workload this sidecar stands in front of."""

    name: str
    namespace: str
    service: str
    version: str
    service_account: str
    labels: dict[str, str]
    # A gateway's Gateway server ports (its outbound listener stands for them); () for a sidecar.
    gateway_ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """Timeouts and sizes; defaults follow Envoy's where Envoy has one."""

    # Slowloris guard: the whole request head must arrive within this.
    request_headers_timeout_s: float = 10.0
    # A keep-alive client connection with no request in flight is closed after this.
    idle_timeout_s: float = 60.0
    # Pooled upstream connections are closed after this long unused, below the
    # 5 s keep-alive of common servers (uvicorn, Node), so we rarely reuse one
    # the server is about to close.
    upstream_idle_timeout_s: float = 4.0
    connect_timeout_s: float = 5.0
    # After SIGTERM, in-flight requests get this long to finish.
    drain_timeout_s: float = 5.0
    max_idle_per_endpoint: int = 32
    request_log_size: int = 1024
    # Connections open at once on the inbound and on the outbound listener, each;
    # one more is closed at once (Envoy's listener connection limit; Istio sets
    # no per-listener one). Ten times the busiest lab load (concurrency in the tens): a guard
    # against a runaway client, not a fit to the descriptor limit; a process
    # that runs out of descriptors first pauses accepting (docs/limits.md).
    max_connections: int = 1024
    # The admin pages serve a browser, a notebook and the lab's scrapes.
    admin_max_connections: int = 32
    # A request whose body stops arriving this long gets 408 (flag SI). Envoy's
    # default is 5 min (Istio turns it off): far past a learner's patience.
    # 30 s is far longer than a client that is still sending ever pauses (TCP
    # resends a lost segment within seconds), and short enough to watch in a
    # lesson (docs/limits.md).
    stream_idle_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """What the sidecar records and where it goes (docs/observability.md).

    With `enabled` false no request is recorded at all (no metrics, logs or
    spans): the benchmark's baseline. Records are buffered (up to
    `buffer_size`, oldest dropped and counted beyond it) and flushed every
    `flush_interval_s`: to the access log file, when one is set (rotated at
    `access_log_max_bytes`, keeping `access_log_backups` old files), and to the
    control plane, when there is one and `push` is true.
    """

    enabled: bool = True
    access_log: str | None = None
    access_log_max_bytes: int = 10 * 1024 * 1024
    access_log_backups: int = 2
    flush_interval_s: float = 1.0
    # About 1.1 KB a record while the control plane is away: 10000 is ~11 MB at most.
    buffer_size: int = 10000
    push: bool = True


@dataclass(frozen=True, slots=True)
class StaticIdentity:
    """A workload certificate given in the bootstrap, for a sidecar with a static snapshot.

    Benchmarks and tests use it to run an mTLS pair without a control plane;
    it is used as given and never renewed. PEM text, the key unencrypted
    (the bootstrap file is written mode 0600).
    """

    certificate_chain: str
    private_key: str
    trust_bundle: str


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """Where to fetch snapshots, and the node token to prove who we are."""

    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Everything the sidecar needs before its first snapshot."""

    node: str
    workload: Workload
    host: str
    inbound_port: int | None
    app_port: int | None
    outbound_port: int
    admin_port: int
    control_plane: ControlPlane | None
    static_snapshot: dict[str, Any] | None
    limits: Limits = field(default_factory=Limits)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    static_identity: StaticIdentity | None = None
    # The bearer token the admin pages that expose config, certificates or
    # requests (or change state) require; None closes them (meshkit.sidecar.admin).
    admin_token: str | None = None

    @property
    def identity(self) -> Identity:
        """The SPIFFE identity this sidecar holds (checked valid at parse time)."""
        return Identity(DEFAULT_TRUST_DOMAIN, self.workload.namespace, self.workload.service_account)

    def public_dict(self) -> dict[str, Any]:
        """The bootstrap as /config_dump shows it: everything but the tokens."""
        return {
            "node": self.node,
            "workload": {f.name: getattr(self.workload, f.name) for f in fields(Workload)},
            "host": self.host,
            "inbound": None if self.inbound_port is None else {"port": self.inbound_port, "app_port": self.app_port},
            "outbound": {"port": self.outbound_port},
            "admin": {"port": self.admin_port},
            "control_plane": None if self.control_plane is None else {"url": self.control_plane.url},
            "static_snapshot": self.static_snapshot,
            "limits": {f.name: getattr(self.limits, f.name) for f in fields(Limits)},
            "static_identity": None if self.static_identity is None else {"certificate_chain": self.static_identity.certificate_chain},
            "telemetry": {f.name: getattr(self.telemetry, f.name) for f in fields(TelemetrySettings)},
            "gateway": {"ports": list(self.workload.gateway_ports)} if self.workload.gateway_ports else None,
        }


def _fail(path: str, reason: str) -> ConfigError:
    return ConfigError("bootstrap", "sidecar", path, reason)


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {type(value).__name__}")
    return value


def _text(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or not value.isprintable():
        raise _fail(f"{path}.{key}" if path else key, f"expected non-empty printable text, got {value!r}")
    return value


def _port(obj: dict[str, Any], key: str, path: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise _fail(f"{path}.{key}", f"expected a port number from 0 to 65535, got {value!r}")
    return value


def _limits(raw: Any) -> Limits:
    if raw is None:
        return Limits()
    obj = _obj(raw, "limits")
    known = {f.name: f for f in fields(Limits)}
    values: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in known:
            raise _fail(f"limits.{key}", f"unknown limit; known: {', '.join(known)}")
        want_int = known[key].type in ("int", int)
        ok_type = isinstance(value, int) if want_int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or value <= 0:
            raise _fail(f"limits.{key}", f"expected a positive {'integer' if want_int else 'number'}, got {value!r}")
        values[key] = value if want_int else float(value)
    return Limits(**values)


def _telemetry(raw: Any) -> TelemetrySettings:
    if raw is None:
        return TelemetrySettings()
    obj = _obj(raw, "telemetry")
    known = {f.name for f in fields(TelemetrySettings)}
    values: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"telemetry.{key}"
        if key not in known:
            raise _fail(path, f"unknown setting; known: {', '.join(sorted(known))}")
        if key in ("enabled", "push"):
            if not isinstance(value, bool):
                raise _fail(path, f"expected true or false, got {value!r}")
        elif key == "access_log":
            if value is not None and (not isinstance(value, str) or not value or not value.isprintable()):
                raise _fail(path, f"expected a file path or null, got {value!r}")
        elif key == "flush_interval_s":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
                raise _fail(path, f"expected seconds above 0, at most 60, got {value!r}")
            value = float(value)
        elif isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "access_log_backups" else 1):
            raise _fail(path, f"expected a {'non-negative' if key == 'access_log_backups' else 'positive'} integer, got {value!r}")
        values[key] = value
    return TelemetrySettings(**values)


def _control_plane(raw: Any) -> ControlPlane | None:
    if raw is None:
        return None
    obj = _obj(raw, "control_plane")
    url = _text(obj, "url", "control_plane")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise _fail("control_plane.url", f"expected http://host:port, got {url!r}")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise _fail("control_plane.url", f"bad port in {url!r}") from exc
    return ControlPlane(host=parts.hostname, port=port, token=_text(obj, "token", "control_plane"))


def _admin_token(obj: dict[str, Any]) -> str | None:
    """`admin.token`, optional: without one the protected admin pages stay closed."""
    for key in obj:
        if key not in ("port", "token"):
            raise _fail(f"admin.{key}", "unknown key; known: port, token")
    if obj.get("token") is None:
        return None
    token = _text(obj, "token", "admin")
    if len(token) < 16:
        raise _fail("admin.token", "expected at least 16 characters: a short token can be guessed")
    return token


def _static_identity(raw: Any) -> StaticIdentity | None:
    if raw is None:
        return None
    obj = _obj(raw, "static_identity")
    for key in obj:
        if key not in ("certificate_chain", "private_key", "trust_bundle"):
            raise _fail(f"static_identity.{key}", "unknown key; known: certificate_chain, private_key, trust_bundle")
    values = {}
    for key, marker in (("certificate_chain", "CERTIFICATE"), ("private_key", "PRIVATE KEY"), ("trust_bundle", "CERTIFICATE")):
        value = obj.get(key)
        if not isinstance(value, str) or f"-----BEGIN {marker}-----" not in value or not value.isascii():
            raise _fail(f"static_identity.{key}", f"expected PEM text with a {marker} block")
        values[key] = value
    return StaticIdentity(**values)


def _gateway_ports(raw: Any) -> tuple[int, ...]:
    if raw is None:
        return ()
    obj = _obj(raw, "gateway")
    for key in obj:
        if key != "ports":
            raise _fail(f"gateway.{key}", "unknown key; known: ports")
    ports = obj.get("ports")
    if not isinstance(ports, list) or not ports:
        raise _fail("gateway.ports", f"expected a non-empty list of port numbers, got {ports!r}")
    for i, port in enumerate(ports):
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise _fail(f"gateway.ports[{i}]", f"expected a port number from 1 to 65535, got {port!r}")
    return tuple(ports)


def parse_bootstrap(doc: Any) -> Bootstrap:
    """A checked Bootstrap from the decoded JSON document."""
    top = _obj(doc, "")
    for key in top:
        if key not in _KEYS:
            raise _fail(key, f"unknown key; known: {', '.join(_KEYS)}")
    gateway_ports = _gateway_ports(top.get("gateway"))
    if gateway_ports and top.get("inbound") is not None:
        raise _fail("inbound", "a gateway has no app behind it: set inbound to null")
    raw_workload = _obj(top.get("workload"), "workload")
    labels = _obj(raw_workload.get("labels", {}), "workload.labels")
    workload = Workload(
        name=_text(raw_workload, "name", "workload"),
        namespace=_text(raw_workload, "namespace", "workload"),
        service=_text(raw_workload, "service", "workload"),
        version=_text(raw_workload, "version", "workload"),
        service_account=_text(raw_workload, "service_account", "workload"),
        labels={str(k): str(v) for k, v in labels.items()},
        gateway_ports=gateway_ports,
    )
    inbound = top.get("inbound")
    if inbound is not None:
        inbound = _obj(inbound, "inbound")
    control_plane = _control_plane(top.get("control_plane"))
    static = top.get("static_snapshot")
    if static is not None:
        static = _obj(static, "static_snapshot")
    if (control_plane is None) == (static is None):
        raise _fail("control_plane", "set exactly one of control_plane and static_snapshot")
    static_identity = _static_identity(top.get("static_identity"))
    if static_identity is not None and static is None:
        raise _fail("static_identity", "a static identity goes with a static snapshot; with a control plane the CA issues it")
    try:
        Identity(DEFAULT_TRUST_DOMAIN, workload.namespace, workload.service_account)
    except InvalidIdentity as exc:
        raise _fail("workload.service_account", f"namespace and service account must form a SPIFFE ID: {exc}") from None
    return Bootstrap(
        node=_text(top, "node", ""),
        workload=workload,
        host=_text(top, "host", ""),
        inbound_port=None if inbound is None else _port(inbound, "port", "inbound"),
        app_port=None if inbound is None else _port(inbound, "app_port", "inbound"),
        outbound_port=_port(_obj(top.get("outbound"), "outbound"), "port", "outbound"),
        admin_port=_port(_obj(top.get("admin"), "admin"), "port", "admin"),
        admin_token=_admin_token(_obj(top.get("admin"), "admin")),
        control_plane=control_plane,
        static_snapshot=static,
        limits=_limits(top.get("limits")),
        static_identity=static_identity,
        telemetry=_telemetry(top.get("telemetry")),
    )


def load_bootstrap(path: Path) -> Bootstrap:
    """Read and check the bootstrap file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("bootstrap", str(path), "", f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("bootstrap", str(path), f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from exc
    return parse_bootstrap(doc)
