"""The Lab: the one object notebooks, scripts and the CLI drive.

    lab = Lab().up()
    lab.deploy("bookinfo")                  # with Istio's ingress gateway
    lab.call("productpage", "/productpage")
    lab.ingress_url()                       # http://127.0.0.1:PORT: open /productpage in a browser
    before = lab.load("productpage", "/productpage", rate=20, duration=5)
    lab.inject("default")
    after = lab.load("productpage", "/productpage", rate=20, duration=5)
    lab.down()

Every method is synchronous and safe inside a running event loop (a notebook
kernel): async work runs on meshkit's own loop thread (meshkit.aio). Tables
come back as pandas DataFrames. The Lab holds no mesh logic: it asks the
backend to place processes and the control plane to change config.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from meshkit import aio, config, journal, observe, security_report, telemetry
from meshkit.backends.base import Backend, InstanceView, ProcessUsage
from meshkit.backends.local import LocalBackend, spec_to_dict
from meshkit.control.otlp import BadEndpoint, traces_url
from meshkit.demo.apps import GATEWAY_NAMESPACE, INGRESS_GATEWAY, Latency, WorkloadSpec, get_app
from meshkit.demo.paths import DEFAULT_ID, fill_path
from meshkit.errors import ControlPlaneError, LabError, MeshkitError, UnknownWorkload
from meshkit.home import LabHome, default_home
from meshkit.loadgen import LoadSpec, results_frame, run_load
from meshkit.names import service_host
from meshkit.progress import Progress, quiet

CLIENT = WorkloadSpec(
    name="curl",
    service="curl",
    version="v1",
    service_account="curl",
    port=80,
    latency=Latency(0.05, 0.2),
)
"""The lab's own traffic source, like the `curl` pod of Istio's tasks: lab.call
and lab.load send from inside it, through its sidecar once it has one."""

CLIENT_APP = "lab"
CUSTOM_APP = "custom"
"""The app name of workloads deployed from WorkloadSpecs rather than by app name."""


@dataclass(frozen=True)
class CallResult:
    """One response, with what the mesh says about it."""

    status: int
    headers: dict[str, str]
    text: str
    elapsed_ms: float
    via_sidecar: bool
    error: str = ""

    @property
    def flags(self) -> str:
        """Envoy-style response flags the mesh set (UF, UH, NR, ...), or ""."""
        return self.headers.get("x-meshkit-response-flags", "")

    @property
    def version(self) -> str:
        """Which version of the destination served the request, when known."""
        if "x-meshkit-version" in self.headers:
            return self.headers["x-meshkit-version"]
        data = self.json()
        return str(data.get("version", "")) if isinstance(data, dict) else ""

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def __repr__(self) -> str:
        flags = f" flags={self.flags}" if self.flags else ""
        version = f" version={self.version}" if self.version else ""
        how = "via sidecar" if self.via_sidecar else "direct"
        body = self.text if len(self.text) <= 200 else self.text[:200] + "..."
        if self.error:
            return f"<CallResult error {self.error!r} {how}>"
        return f"<CallResult {self.status}{flags}{version} {self.elapsed_ms:.1f} ms {how}>\n{body}"


@dataclass
class Lab:
    """A service-mesh lab: control plane, sidecars and demo apps.

    `backend` is "local" (processes on this machine; the default) or a Backend
    object. `home` is the lab's state directory (default MESHKIT_HOME or
    ~/.meshkit): a Lab created later with the same home finds the same lab.
    `cert_lifetime` (a timedelta or seconds, from one minute) is the lifetime
    of the workload certificates the lab's CA signs, 24 h by default: set
    minutes to watch certificates rotate (`lab.certificates()`). It applies
    to certificates issued from `up()` on; sidecars already running renew
    theirs at half their old lifetime (`reset()` starts afresh).
    `otlp_endpoint` (an OpenTelemetry collector's OTLP/HTTP address, such as
    "http://127.0.0.1:4318") receives every span the sidecars record, so the
    lab's traces open in Jaeger or Tempo too; without it the control plane
    uses $OTEL_EXPORTER_OTLP_ENDPOINT when set (docs/observability.md).
    """

    backend: str | Backend = "local"
    home: str | Path | None = None
    namespace: str = "default"
    progress: Progress = field(default=quiet, repr=False)
    cert_lifetime: timedelta | float | None = None
    otlp_endpoint: str | None = None

    def __post_init__(self) -> None:
        lifetime = self.cert_lifetime
        self._cert_lifetime_s = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
        self._home = LabHome(Path(self.home).expanduser() if self.home else default_home())
        if isinstance(self.backend, str):
            if self.backend != "local":
                raise LabError(f"unknown backend {self.backend!r}: this version has 'local'")
            seconds = self._cert_lifetime_s
            if seconds is not None and not 60 <= seconds <= 90 * 86400:
                raise LabError(f"cert_lifetime must be between one minute and 90 days, got {seconds:g} s")
            if self.otlp_endpoint is not None:
                try:
                    traces_url(self.otlp_endpoint)
                except BadEndpoint as exc:
                    raise LabError(f"otlp_endpoint: {exc}") from None
            self._backend: Backend = LocalBackend(self._home, seconds, self.otlp_endpoint)
        else:
            self._backend = self.backend
        self._journal = journal.Journal(self._home.root)
        journal.watch_cells()

    # -- lifecycle ---------------------------------------------------------

    def up(self, control_port: int | None = None) -> Lab:
        """Start the lab, or reattach to the one already running in this home.

        `control_port` pins the control plane's loopback port (default: the
        port it had before, or any free one)."""
        fresh = self._start(control_port)
        self._journal_mark("up", fresh=fresh, cert_lifetime_s=self._cert_lifetime_s)
        return self

    def _start(self, control_port: int | None = None) -> bool:
        """Start (or reattach); True when this started a new, empty lab."""
        fresh = not self._backend.running()
        self._backend.up(self.progress, control_port)
        if not any(v.workload == CLIENT.name and v.namespace == self.namespace for v in self._backend.instances()):
            self._backend.deploy(CLIENT_APP, [CLIENT], self.namespace, inject=False, progress=self.progress)
        return fresh

    def down(self) -> None:
        """Stop every process of the lab and forget its state (the journal and checkpoints stay)."""
        self._backend.down()
        self._journal_mark("down")

    def reset(self) -> Lab:
        """A fresh lab in the same home: everything stopped, config forgotten, started again."""
        self._backend.down()
        self._start()
        self._journal_mark("reset", cert_lifetime_s=self._cert_lifetime_s)
        return self

    def running(self) -> bool:
        return self._backend.running()

    @property
    def state_dir(self) -> Path:
        """The lab's state directory (MESHKIT_HOME)."""
        return self._home.root

    def health(self) -> dict[str, Any]:
        """The control plane's health: `{"ok": True, "version": N}`."""
        return dict(self._control().healthz())

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- workloads ---------------------------------------------------------

    def deploy(
        self,
        app: str | WorkloadSpec | Sequence[WorkloadSpec] = "bookinfo",
        namespace: str | None = None,
        inject: bool = False,
    ) -> pd.DataFrame:
        """Deploy a demo app ("bookinfo" or "shop"), or your own workloads
        (WorkloadSpec: a service, a version, its latency, error rate and
        downstream calls), which make up the app "custom". Returns the app's workloads.

        Bookinfo comes with Istio's ingress gateway (`deploy_gateway()`), as
        Istio's getting-started installs one: apply Istio's
        bookinfo-gateway.yaml and open `ingress_url()` + /productpage."""
        where = namespace or self.namespace
        fields: dict[str, Any] = {"app": app if isinstance(app, str) else CUSTOM_APP, "namespace": where, "inject": inject}
        with self._journaled("deploy", **fields) as extra:
            if isinstance(app, str):
                name, specs = app, get_app(app)
            else:
                name, specs = CUSTOM_APP, (app,) if isinstance(app, WorkloadSpec) else tuple(app)
                extra["specs"] = [spec_to_dict(s) for s in specs]
            self._backend.deploy(name, specs, where, inject, self.progress)
        if app == "bookinfo":
            self.deploy_gateway()
        return self.workloads(app=name)

    def deploy_gateway(self) -> pd.DataFrame:
        """Start Istio's ingress gateway, if it is not running: meshkit's proxy in
        gateway mode, the workload istio-ingressgateway in istio-system (labels
        `istio: ingressgateway`, `app: istio-ingressgateway`). It takes plain HTTP
        from your browser on `ingress_url()` and routes it with the VirtualServices
        bound (`gateways:`) to the Gateways that select it; it calls the mesh
        over mTLS with its own identity, like a sidecar. Returns its workload row."""
        if self._gateway_view() is None:
            self._backend.deploy(CUSTOM_APP, [INGRESS_GATEWAY], GATEWAY_NAMESPACE, True, self.progress)
        view = self._gateway_view()
        if view is None:
            raise LabError("the ingress gateway did not start; see lab.logs('istio-system/istio-ingressgateway', proxy=True)")
        return pd.DataFrame([{
            "namespace": view.namespace, "workload": view.workload, "instance": view.instance,
            "ready": view.running, "url": self.ingress_url(),
        }])

    def ingress_url(self) -> str:
        """Where the ingress gateway listens, `http://127.0.0.1:PORT`: the Gateway
        server port (8080 in bookinfo-gateway.yaml) on this machine. Open
        `ingress_url() + "/productpage"` in a browser once a Gateway and a
        VirtualService bound to it are applied; a path no route matches gets 404."""
        view = self._gateway_view()
        if view is None:
            raise UnknownWorkload("no ingress gateway in this lab: lab.deploy('bookinfo') or lab.deploy_gateway() starts one")
        address = self._backend.local_address(view)
        if address is None:
            raise LabError("the ingress gateway has no address on this machine")
        return f"http://{address}"

    def _gateway_view(self) -> InstanceView | None:
        return next((v for v in self._backend.gateways() if v.workload == INGRESS_GATEWAY.name), None)

    def _proxies(self) -> list[InstanceView]:
        """Every instance with a proxy of meshkit's to ask: the workloads' and the ingress gateway's."""
        return self._backend.instances() + self._backend.gateways()

    def undeploy(self, app: str) -> None:
        """Remove every workload of a demo app."""
        with self._journaled("undeploy", app=app):
            views = [v for v in self._backend.instances() if v.app == app]
            if not views:
                raise UnknownWorkload(f"app {app!r} is not deployed (deployed: {', '.join(self._apps()) or 'none'})")
            self._backend.undeploy(views)

    def inject(self, target: str | None = None) -> pd.DataFrame:
        """Restart a workload, or every workload of a namespace, with a sidecar.

        `target` is a workload name ("reviews-v2"), a namespace ("default"),
        or "namespace/workload"; None means the lab's namespace.
        """
        with self._journaled("inject", target=target):
            self._backend.set_sidecar(self._select(target), True, self.progress)
        return self.workloads()

    def uninject(self, target: str | None = None) -> pd.DataFrame:
        """Restart a workload (or a namespace's workloads) without its sidecar."""
        with self._journaled("uninject", target=target):
            self._backend.set_sidecar(self._select(target), False, self.progress)
        return self.workloads()

    def workloads(self, app: str | None = None) -> pd.DataFrame:
        """One row per workload: its service, version, instances and sidecar state."""
        views = [v for v in self._backend.instances() if app is None or v.app == app]
        sync = self._sync_states()
        rows = []
        for (namespace, workload), group in _group(views).items():
            first = group[0]
            rows.append(
                {
                    "namespace": namespace,
                    "workload": workload,
                    "service": first.service,
                    "version": first.version,
                    "app": first.app,
                    "ready": f"{sum(v.running for v in group)}/{len(group)}",
                    "sidecar": all(v.sidecar for v in group),
                    "config": ", ".join(sorted({sync.get(v.node, "-") if v.sidecar else "-" for v in group})),
                }
            )
        columns = ["namespace", "workload", "service", "version", "app", "ready", "sidecar", "config"]
        return pd.DataFrame(rows, columns=columns)

    def services(self) -> pd.DataFrame:
        """One row per service: its endpoints, the versions behind it, and
        where to open it from this machine (`address` as host:port, `url`).

        On the local backend the address is the stable loopback endpoint of
        the service's first running instance: the app's port, or with a
        sidecar the sidecar's inbound port in front of the app; `url` adds
        the first path the app serves (`/productpage`, `/reviews/0`). A
        browser or curl there is a client outside the mesh: it reaches that
        one instance (no routing rules, which run in the caller's sidecar),
        in plaintext, so a STRICT mTLS mode refuses it as Istio does.
        `lab.call` sends from inside the mesh instead. `meshkit.notebook.service_links(lab)` shows
        the URLs as links."""
        groups: dict[tuple[str, str], list[InstanceView]] = {}
        for view in self._backend.instances():
            groups.setdefault((view.namespace, view.service), []).append(view)
        rows = []
        for (namespace, service), views in groups.items():
            chosen = _first_running(views)
            address = self._backend.local_address(chosen)
            rows.append(
                {
                    "namespace": namespace,
                    "service": service,
                    "host": service_host(service, namespace),
                    "endpoints": len(views),
                    "versions": ", ".join(sorted({v.version for v in views})),
                    "address": address,
                    "url": f"http://{address}{browse_path(chosen.paths)}" if address else None,
                }
            )
        return pd.DataFrame(rows, columns=["namespace", "service", "host", "endpoints", "versions", "address", "url"])

    def resources(self, sample: float = 0.5) -> pd.DataFrame:
        """What the lab costs this machine, measured: one row per process.

        Columns: namespace, workload, instance, role ("control plane", "app",
        "sidecar"), pid, cpu_percent (share of one core over the last `sample`
        seconds, as `top` shows it: 100 is one core busy), cpu_seconds (CPU
        time since the process started), memory_mb (resident memory, MiB).
        All processes are measured over the same window, so a call takes
        `sample` seconds however large the lab; the kernel counts CPU time in
        ticks (10 ms on Linux), so a 0.5 s window reads in steps of 2%. Run it while load flows to see
        what the sidecars add: `lab.resources().groupby("role")[["cpu_percent", "memory_mb"]].sum()`.
        """
        if not 0 < sample <= 60:
            raise LabError(f"sample must be more than 0 and at most 60 seconds, got {sample!r}")
        return resources_frame(self._backend.usage(sample), sample)

    def proxy_status(self) -> pd.DataFrame:
        """Every sidecar's config state, like `istioctl proxy-status`."""
        status = self._control().status()
        rows = []
        for node, info in sorted(status.get("nodes", {}).items()):
            rows.append(
                {
                    "node": node,
                    "acked": info.get("acked"),
                    "status": _sync_word(info, status.get("version")),
                    "reason": info.get("reason") or "",
                    "connected": bool(info.get("connected")),
                }
            )
        return pd.DataFrame(rows, columns=["node", "acked", "status", "reason", "connected"])

    def config_dump(self, workload: str) -> dict[str, Any]:
        """What one workload's sidecar runs now (its /config_dump): the applied
        snapshot and version, and the last config it rejected, if any."""
        views = [v for v in self._select(workload) if v.sidecar]
        if not views:
            raise UnknownWorkload(f"{workload!r} has no sidecar: inject it first with lab.inject({workload!r})")
        admin = self._backend.sidecar_admin(views[0])
        try:
            answer = httpx.get(f"{admin}/config_dump", headers=self._admin_headers(), timeout=5.0, trust_env=False)
            if answer.status_code != 200:
                raise LabError(f"the sidecar of {views[0].node} refused its config_dump ({answer.status_code}): {answer.text.strip()}")
            return dict(answer.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise LabError(f"the sidecar of {views[0].node} did not answer: {exc}") from exc

    def endpoints(self, workload: str = CLIENT.name) -> pd.DataFrame:
        """The endpoints one workload's sidecar balances its calls over, as it sees them
        now (like `istioctl proxy-config endpoints`): per service and subset, each
        endpoint's address, version, whether outlier detection has ejected it, and its
        requests in flight. Read from the sidecar's /clusters page."""
        views = [v for v in self._select(workload) if v.sidecar and v.running]
        if not views:
            raise UnknownWorkload(f"{workload!r} has no sidecar: inject it first with lab.inject({workload!r})")
        docs = self._admin_json(views[:1], "/clusters")
        if not docs or not isinstance(docs[0], list):
            raise LabError(f"the sidecar of {views[0].node} did not answer for its endpoints")
        return observe.endpoints_frame(docs[0])

    def pushes(self, limit: int = 20) -> pd.DataFrame:
        """Recent config pushes: version, how many sidecars ACKed, slowest ACK in ms."""
        rows = []
        for push in self._control().pushes(limit):
            acks = push.get("acks", {})
            rows.append(
                {
                    "version": push["version"],
                    "at": pd.Timestamp(push["at"], unit="s"),
                    "acked": len(acks),
                    "nacked": len(push.get("nacks", {})),
                    "max_ack_ms": max(acks.values()) if acks else float("nan"),
                }
            )
        return pd.DataFrame(rows, columns=["version", "at", "acked", "nacked", "max_ack_ms"])

    # -- config ------------------------------------------------------------

    def apply(self, source: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Apply Istio-shaped config: a YAML file, YAML text, a dict or a list of dicts.

        All or nothing: every resource is checked (Istio's schema, and against
        the lab: known hosts, defined subsets) before any is stored, and a bad
        one raises ConfigError naming its field; then the new version is
        pushed and this returns once every sidecar has ACKed it. The table says
        what changed; its `attrs` hold the version and the slowest ACK in ms.
        """
        with self._journaled("apply") as extra:
            resources = config.load(source)
            manifests = [config.to_manifest(r) for r in resources]
            extra["resources"] = manifests
            answer = self._control().apply(manifests)
            extra["version"] = answer["version"]
            extra["changed"] = [item["changed"] for item in answer["applied"]]
            acks = self._wait_acked(answer["version"])
        rows = [
            {"kind": r.KIND, "namespace": r.namespace, "name": r.name, "changed": item["changed"]}
            for r, item in zip(resources, answer["applied"], strict=True)
        ]
        frame = pd.DataFrame(rows, columns=["kind", "namespace", "name", "changed"])
        frame.attrs.update(version=answer["version"], ack_ms=max(acks.values(), default=0.0), warnings=answer["warnings"])
        for warning in answer["warnings"]:
            self.progress(f"warning: {warning}")
        return frame

    def get(self, kind: str | None = None, name: str | None = None, namespace: str | None = None) -> Any:
        """The lab's config: a table of resources, or one resource (a dict) when `name` is given.

        `kind` is a kind name, case-insensitive, or a short name as kubectl
        knows it (vs, dr, pa, ap, gw)."""
        wanted = _kind(kind) if kind else None
        found = [
            r for r in self._control().resources()
            if (wanted is None or r["kind"] == wanted)
            and (name is None or r["metadata"]["name"] == name)
            and (namespace is None or r["metadata"].get("namespace", "default") == namespace)
        ]
        if name is not None:
            if not found:
                raise UnknownWorkload(f"no {wanted or 'resource'} named {name!r} in the lab")
            return found[0]
        rows = [{"kind": r["kind"], "namespace": r["metadata"].get("namespace", "default"), "name": r["metadata"]["name"]} for r in found]
        return pd.DataFrame(rows, columns=["kind", "namespace", "name"])

    def delete(self, kind: str, name: str, namespace: str | None = None) -> int:
        """Remove one resource; returns the config version the sidecars ACKed."""
        with self._journaled("delete", kind=kind, name=name, namespace=namespace or self.namespace) as extra:
            wanted = _kind(kind)
            extra["kind"] = wanted
            answer = self._control().delete_resource(wanted, namespace or self.namespace, name)
            if not answer["changed"]:
                raise UnknownWorkload(f"no {wanted} named {name!r} in namespace {namespace or self.namespace!r}")
            extra["version"] = answer["version"]
            self._wait_acked(answer["version"])
        return int(answer["version"])

    def export_istio(self, path: str | Path | None = None) -> str:
        """The lab's config as YAML for a real Istio (networking.istio.io/v1,
        security.istio.io/v1); written to `path` when given. Loading it back
        with apply() gives the same config."""
        stored = self._control().resources()
        text = config.to_istio_yaml(config.load(stored)) if stored else ""
        if path is not None:
            Path(path).write_text(text)
        return text

    def _wait_acked(self, version: int) -> dict[str, float]:
        nodes = [v.node for v in self._proxies() if v.sidecar and v.running]
        if not nodes:
            return {}
        return dict(self._control().wait_acked(version, nodes=nodes, timeout=15.0))

    # -- traffic -----------------------------------------------------------

    def call(
        self,
        service: str,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        source: str = CLIENT.name,
        timeout: float = 10.0,
    ) -> CallResult:
        """Send one request from inside the mesh (from `source`, the lab's
        `curl` workload by default) and return what came back."""
        url, host = self._url(service, path)
        entry = self._backend.entry(self._source(source), host)
        started = time.perf_counter()
        try:
            if entry.proxy:
                with httpx.Client(proxy=f"http://{entry.proxy[0]}:{entry.proxy[1]}", timeout=timeout, trust_env=False) as http:
                    response = http.request(method, url, headers=dict(headers or {}), content=body)
            else:
                assert entry.connect_to is not None
                addr, port = entry.connect_to
                direct = f"http://{addr}:{port}{path}"
                with httpx.Client(timeout=timeout, trust_env=False) as http:
                    response = http.request(method, direct, headers={"host": host, **dict(headers or {})}, content=body)
        except httpx.HTTPError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return CallResult(0, {}, "", elapsed, entry.proxy is not None, error=f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        return CallResult(response.status_code, dict(response.headers), response.text, elapsed, entry.proxy is not None)

    def load_spec(
        self,
        service: str,
        path: str = "/",
        *,
        rate: float = 20.0,
        duration: float | None = 5.0,
        requests: int | None = None,
        concurrency: int = 64,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        source: str = CLIENT.name,
        timeout: float = 10.0,
    ) -> LoadSpec:
        """The load `load()` would send with these arguments: from `source`,
        through its sidecar when it has one. For callers that run it
        themselves (the notebook's live load generator)."""
        url, host = self._url(service, path)
        entry = self._backend.entry(self._source(source), host)
        return LoadSpec(
            url=url,
            rate=rate,
            duration_s=None if requests else duration,
            requests=requests,
            concurrency=concurrency,
            proxy=entry.proxy,
            connect_to=entry.connect_to,
            method=method,
            headers=dict(headers or {}),
            timeout_s=timeout,
        )

    def load(
        self,
        service: str,
        path: str = "/",
        *,
        rate: float = 20.0,
        duration: float | None = 5.0,
        requests: int | None = None,
        concurrency: int = 64,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        source: str = CLIENT.name,
        timeout: float = 10.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """Open-loop load: `rate` requests per second for `duration` seconds
        (or exactly `requests`), latency counted from each request's intended
        send time. One row per request."""
        args = {"service": service, "path": path, "rate": rate, "duration": duration, "requests": requests,
                "concurrency": concurrency, "method": method, "headers": dict(headers or {}), "source": source,
                "timeout": timeout}
        with self._journaled("load", args=args) as extra:
            spec = self.load_spec(
                service, path, rate=rate, duration=duration, requests=requests, concurrency=concurrency,
                method=method, headers=headers, source=source, timeout=timeout,
            )
            frame = results_frame(aio.run(run_load(spec, progress=progress)))
            frame["sidecar"] = spec.proxy is not None
            extra["summary"] = journal.load_summary(frame)
        return frame

    def edges(self) -> pd.DataFrame:
        """Observed service-to-service edges from the sidecars' telemetry:
        requests, and how each edge is secured (connection_security_policy).

        Every request since the lab started (the control plane's store); when
        the control plane is away, what the running sidecars' counters say."""
        try:
            return observe.edges(self._records(None, columns=observe.SUMMARY_FIELDS))
        except ControlPlaneError:
            return telemetry.edges(aio.run(telemetry.scrape(self._admin_urls())))

    # -- security ----------------------------------------------------------

    def security(self) -> pd.DataFrame:
        """Every observed edge and how it is secured: one row per (source,
        destination, mTLS or plaintext, peer identity), with the destination's
        effective PeerAuthentication mode, the requests seen and how many an
        AuthorizationPolicy denied (403 RBAC); `would_deny` and `dry_run` say
        what policies annotated `istio.io/dry-run: "true"` would have denied
        ("default/deny-curl would deny 12 requests") while letting them through.

        Built from the sidecars' request records (the destination's where it
        has a sidecar: it verified the caller) and each sidecar's /certs."""
        try:
            records = self.requests()
        except ControlPlaneError:
            records = self._ring_records()
        sidecars = [v for v in self._proxies() if v.sidecar and v.running]
        docs = self._admin_json(sidecars, "/certs")
        modes = {(v.namespace, v.workload): security_report.mode_word(doc) for v, doc in zip(sidecars, docs, strict=True)}
        return security_report.security_edges(records, modes)

    def certificates(self) -> pd.DataFrame:
        """One row per workload certificate (one per sidecar): identity, serial,
        validity, time to renewal, rotations so far; read from each sidecar's /certs."""
        sidecars = [v for v in self._proxies() if v.sidecar and v.running]
        docs = self._admin_json(sidecars, "/certs")
        return security_report.certificates_frame(
            [(v.namespace, v.workload, v.instance, doc) for v, doc in zip(sidecars, docs, strict=True)]
        )

    def rotate_root(self, timeout: float = 60.0) -> pd.DataFrame:
        """Replace the mesh's root CA without failing a request, as a CA rotation in production must.

        Three steps, each reported through `progress`: a new root signs from
        now on while the old one stays trusted; every sidecar, seeing that
        its certificate predates the new root, gets a new one at once; then
        the old root is retired and the sidecars trust only the new one.
        Returns `certificates()`: every `root` is the new one, `trusted_roots` 1.
        If the sidecars do not all renew within `timeout` seconds, the old root
        stays trusted (nothing breaks) and LabError names the ones pending;
        calling rotate_root again starts a fresh rotation.
        """
        with self._journaled("rotate_root"):
            return self._rotate_root(timeout)

    def _rotate_root(self, timeout: float) -> pd.DataFrame:
        control = self._control()
        started = control.rotate_root()
        new_root = started["signing_root"]["key_id"]
        self.progress(f"new root {new_root[:8]} signs; old root still trusted; waiting for sidecars to renew")
        self._wait_acked(started["version"])
        deadline = time.monotonic() + timeout
        while True:
            pending = control.ca()["pending"]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise LabError(
                    f"{len(pending)} sidecar(s) did not get a certificate from the new root within {timeout:g} s "
                    f"({', '.join(pending[:5])}); both roots stay trusted, so traffic is unaffected"
                )
            time.sleep(0.1)
        retired = control.retire_roots()
        self._wait_acked(retired["version"])
        self.progress(f"old root retired: the mesh trusts only {new_root[:8]}")
        return self.certificates()

    def _admin_json(self, views: Sequence[InstanceView], path: str) -> list[Any]:
        urls = [self._backend.sidecar_admin(v) or "" for v in views]
        return list(aio.run(security_report.fetch_json(urls, path, self._backend.sidecar_admin_token()))) if urls else []

    def _admin_headers(self) -> dict[str, str]:
        """What a request to a sidecar's protected admin page carries: the lab's admin token."""
        token = self._backend.sidecar_admin_token()
        return {} if token is None else {"authorization": f"Bearer {token}"}

    def _ring_records(self) -> pd.DataFrame:
        """Each running sidecar's recent requests (/requests), when the control plane's store is away."""
        sidecars = [v for v in self._proxies() if v.sidecar and v.running]
        rows = [
            {**record, "destination_namespace": None}
            for doc in self._admin_json(sidecars, "/requests?limit=100000")
            for record in (doc or [])
        ]
        return pd.DataFrame(rows)

    # -- observability -----------------------------------------------------

    def requests(
        self,
        window: float | str | None = None,
        *,
        workload: str | None = None,
        reporter: str | None = None,
        trace_id: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Request records, one per request per reporting sidecar, oldest first.

        `window` keeps the last seconds (or "30s", "5m"); `workload` keeps
        requests it sent or served; `reporter` is "source" (the caller's
        sidecar) or "destination" (the callee's). Every sidecar is asked to
        deliver what it recorded first, so the table is complete up to now.
        """
        frame = self._records(window, trace_id=trace_id, limit=limit)
        if workload is not None:
            frame = frame[(frame["source_workload"] == workload) | (frame["destination_workload"] == workload)]
        if reporter is not None:
            frame = frame[frame["reporter"] == reporter]
        return frame.reset_index(drop=True)

    def metrics(
        self,
        window: float | str | None = 60.0,
        by: str | Sequence[str] = ("destination_workload",),
        *,
        reporter: str | None = "destination",
        exact: bool = False,
    ) -> pd.DataFrame:
        """rps, success rate and p50/p90/p99 latency per group over the last `window` seconds.

        `by` is one or more record columns (destination_workload,
        destination_service, source_workload, destination_version, code, ...).
        Percentiles come from Istio's histogram buckets as Prometheus's
        histogram_quantile computes them; exact=True uses the records' own."""
        seconds = _seconds(window)
        now = time.time()
        frame = self._records(seconds, now=now, columns=observe.SUMMARY_FIELDS)
        return observe.metrics(frame, seconds, [by] if isinstance(by, str) else list(by), reporter, now, exact)

    def topology(self, window: float | str | None = None, *, reporter: str = "auto") -> pd.DataFrame:
        """Edges (source workload -> destination service) with rps, success rate, p50/p99 and
        the share of mTLS requests: Kiali's graph as a table (window None: since the lab began).
        meshkit.notebook.figures.topology_figure draws it."""
        seconds = _seconds(window)
        now = time.time()
        frame = self._records(seconds, now=now, columns=observe.SUMMARY_FIELDS)
        return observe.topology(frame, seconds, reporter, now if seconds else None)

    def stat(self, workload: str | None = None, window: float | str = 60.0) -> pd.DataFrame:
        """`linkerd stat`: per workload meshed, success rate, rps, p50/p95/p99 of what it served."""
        seconds = _seconds(window) or 60.0
        now = time.time()
        workloads = self.workloads()
        if workload is not None:
            workloads = workloads[workloads["workload"] == workload]
            if workloads.empty:
                raise UnknownWorkload(f"no workload {workload!r} (workloads: {', '.join(self.workloads()['workload'])})")
        return observe.stat(self._records(seconds, now=now, columns=observe.SUMMARY_FIELDS), workloads, seconds, now)

    def top(self, window: float | str = 10.0, limit: int = 20) -> pd.DataFrame:
        """`linkerd top`: the busiest (source, destination, method, path) of the last `window` seconds."""
        seconds = _seconds(window) or 10.0
        now = time.time()
        return observe.top(self._records(seconds, now=now, columns=observe.SUMMARY_FIELDS), seconds, now, limit)

    def traces(self, window: float | str | None = None, limit: int | None = 50) -> pd.DataFrame:
        """Recent traces, newest first: root call, total time, spans, services, errors."""
        return observe.traces(self._records(_seconds(window)), limit)

    def trace(self, trace_id: str) -> pd.DataFrame:
        """One request's whole tree of spans (a span per sidecar hop), each with its start and duration."""
        tree = observe.trace(self._records(None, trace_id=trace_id), trace_id)
        if tree.empty:
            raise UnknownWorkload(f"no spans recorded for trace {trace_id!r} (see lab.traces() for recent ones)")
        return tree

    def telemetry_drops(self) -> pd.DataFrame:
        """Per sidecar process: records received by the control plane and records lost on the
        way (gaps it saw, drops the sidecar reported); attrs hold the store's evictions."""
        self._flush_telemetry()
        return observe.drops(self._control().telemetry_status())

    def logs(self, workload: str, sidecar: bool = False, tail: int | None = 100, proxy: bool = False) -> str:
        """The last `tail` lines of a workload's log: the app's, or with sidecar=True its
        sidecar's access log (one JSON line per request), or with proxy=True the sidecar's own log."""
        views = self._select(workload)
        where = getattr(self._backend, "log_path", None)
        if where is None:
            raise LabError(f"the {self._backend.name} backend does not keep log files")
        if (sidecar or proxy) and not any(v.sidecar for v in views):
            raise UnknownWorkload(f"{workload!r} has no sidecar: inject it first with lab.inject({workload!r})")
        if sidecar:
            self._flush_telemetry()
        kind = "sidecar" if proxy else "access" if sidecar else "app"
        lines: list[str] = []
        for view in views:
            path = where(view, kind)
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            lines += text.splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def prometheus_targets(self, path: str | Path | None = None) -> list[dict[str, Any]]:
        """Every sidecar's /stats/prometheus as a Prometheus file_sd target list (written to
        `path` when given): point a real Prometheus at it, see docs/observability.md."""
        groups = []
        for view in self._proxies():
            url = self._backend.sidecar_admin(view) if view.sidecar else None
            if url:
                groups.append({"targets": [url.split("://", 1)[1]],
                               "labels": {"namespace": view.namespace, "pod": view.instance, "workload": view.workload}})
        if path is not None:
            target = Path(path)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(groups, indent=2))
            tmp.replace(target)
        return groups

    def _admin_urls(self) -> list[str]:
        return [u for u in (self._backend.sidecar_admin(v) for v in self._proxies() if v.sidecar and v.running) if u]

    def _flush_telemetry(self) -> None:
        urls = self._admin_urls()
        if urls:
            aio.run(telemetry.flush(urls, self._backend.sidecar_admin_token()))

    def _records(
        self,
        window_s: float | None,
        *,
        now: float | None = None,
        trace_id: str | None = None,
        limit: int | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        self._flush_telemetry()
        since = None if window_s is None else (now if now is not None else time.time()) - window_s
        doc = self._control().telemetry_records(since=since, trace_id=trace_id, limit=limit, columns=columns)
        return observe.requests_frame(doc)

    # -- the journal ---------------------------------------------------------

    def journal(self, all_sessions: bool = False) -> pd.DataFrame:
        """What was done to this lab, one row per action, oldest first (see meshkit.journal).

        By default the actions since the lab's last fresh start (the lab
        running now was built from them); all_sessions=True keeps every
        one the home remembers. Lines that cannot be read are skipped and
        named in `attrs["problems"]`."""
        reading = self._journal.read()
        table = journal.frame(reading.entries if all_sessions else journal.session(reading.entries))
        table.attrs["problems"] = reading.problems
        return table

    def note(self, text: str) -> None:
        """Write a note of your own into the journal ("tried STRICT before the legacy client moved")."""
        self._journal_mark("note", text=str(text))

    def export_script(
        self,
        path: str | Path,
        *,
        since: Any = None,
        checkpoint: str | None = None,
        last: int | None = None,
    ) -> Path:
        """Write this lab's experiment as a plain Python script that replays it on a fresh lab.

        The script repeats the journal's actions since the lab's last fresh
        start (or a slice: `since` a time — a datetime, a pandas-readable
        time or epoch seconds —, after the checkpoint named `checkpoint`, or
        the `last` N actions, rebuilding the lab as it was where the slice
        begins), then writes each load run as CSV and the charts as HTML and
        prints each measurement next to the original one. Run it with
        `python <path>`; see docs/export.md."""
        from meshkit import export_script

        return export_script.write_from_journal(self._journal, Path(path), since=since, checkpoint=checkpoint, last=last)

    def _journal_mark(self, action: str, **fields: Any) -> None:
        """Append one entry (an action that succeeded) with the config version it left."""
        version = fields.pop("version") if "version" in fields else self._config_version()
        self._journal.record(action, **{"version": version, **fields, **journal.origin()})

    @contextlib.contextmanager
    def _journaled(self, action: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """Journal the action in the block: with what it adds to `extra` when it
        succeeds, as refused (with the error) when it raises a MeshkitError."""
        extra: dict[str, Any] = {}
        try:
            yield extra
        except MeshkitError as exc:
            self._journal.record(action, **{**fields, **extra, "ok": False, "error": str(exc), **journal.origin()})
            raise
        self._journal_mark(action, **{**fields, **extra})

    def _config_version(self) -> int | None:
        try:
            return int(self._control().healthz()["version"])
        except (MeshkitError, KeyError, TypeError, ValueError):
            return None

    # -- checkpoints and catch-up ---------------------------------------------

    def checkpoint(self, name: str) -> Path:
        """Save what the lab is as a checkpoint to come back to: deployed apps
        (your own WorkloadSpecs whole), which workloads have sidecars, every
        resource and the certificate lifetime (meshkit.state). Written to
        <home>/checkpoints/<name>.yaml, replacing one of the same name, and
        kept across down() and reset(). Returns the file's path."""
        from meshkit import checkpoints, restore, state

        state.check_name(name)
        found = restore.read_lab(self)
        if not found["running"]:
            raise LabError(f"no lab is running in {self.state_dir} to checkpoint: start one with Lab().up()")
        path = checkpoints.save(self.state_dir, name, found)
        self._journal_mark("checkpoint", name=name)
        return path

    def checkpoints(self) -> pd.DataFrame:
        """The checkpoints of this home: name, saved_at, apps, sidecars, resources, cert_lifetime
        (unreadable files are named in `attrs["problems"]`)."""
        from meshkit import checkpoints

        return checkpoints.table(self.state_dir)

    def restore(self, name: str) -> Any:
        """Bring the lab back to checkpoint `name` exactly: resources added since
        are deleted and changed ones put back, apps missing are deployed (and
        apps added since undeployed), sidecars injected or removed, stopped
        processes restarted. A different certificate lifetime resets the lab
        first, since the control plane's CA fixes it at start and certificates
        already issued keep theirs. Every step is a Lab call, journalled; the
        result says what changed (meshkit.state.Changes)."""
        from meshkit import checkpoints

        with self._journaled("restore", name=name) as extra:
            changes = self._bring_to(checkpoints.load(self.state_dir, name), f"restore {name}")
            extra["changes"] = changes.lines
        return changes

    def diff(self, name: str) -> Any:
        """How the lab differs from checkpoint `name`, in plain words: apps,
        sidecars, each differing resource field with both values, the
        certificate lifetime, stopped processes (meshkit.state.Differences)."""
        from meshkit import checkpoints, restore, state

        target = checkpoints.load(self.state_dir, name)
        return state.Differences(f"checkpoint {name!r}", tuple(state.diff(restore.read_lab(self), target)))

    def catch_up(self, notebook: int | str) -> Any:
        """Put this lab, whatever its state (fresh, another notebook's, broken,
        or not up at all), into the state notebook `notebook` (7 or "07")
        starts from, as declared in meshkit/start_states/NN.yaml; returns what changed."""
        from meshkit import checkpoints

        number = checkpoints.notebook_id(notebook)
        with self._journaled("catch_up", notebook=number) as extra:
            changes = self._bring_to(checkpoints.start_state(number), f"catch-up {number}")
            extra["changes"] = changes.lines
        return changes

    def _bring_to(self, target: dict[str, Any], what: str) -> Any:
        """meshkit.restore.bring_to with progress: the `progress` lines, and a bar when a notebook frontend looks."""
        from meshkit import restore
        from meshkit.notebook.frontend import is_live

        bars: list[Any] = []

        def on_plan(total: int) -> None:
            if is_live():
                from meshkit.notebook.steps import steps_bar

                bars.extend(b for b in [steps_bar(what, total)] if b is not None)

        def on_step(number: int, total: int, doing: str) -> None:
            for bar in bars:
                bar.step(number, total, doing)

        try:
            changes = restore.bring_to(self, target, what, on_step, on_plan)
        except MeshkitError as exc:
            for bar in bars:
                bar.finish(str(exc), ok=False)
            raise
        for bar in bars:
            bar.finish(str(changes))
        return changes

    def _use_cert_lifetime(self, seconds: float) -> None:
        """Start the control plane with this certificate lifetime at the next up() or reset()."""
        self.cert_lifetime = seconds
        self._cert_lifetime_s = seconds
        if hasattr(self._backend, "cert_lifetime_s"):
            self._backend.cert_lifetime_s = seconds

    # -- helpers -----------------------------------------------------------

    def _control(self) -> Any:
        return self._backend.control()

    def _apps(self) -> list[str]:
        return sorted({v.app for v in self._backend.instances() if v.app != CLIENT_APP})

    def _select(self, target: str | None) -> list[InstanceView]:
        views = self._proxies()  # the gateway too, for config_dump and logs; injection leaves it as it is
        if target is None:
            target = self.namespace
        if "/" in target:
            namespace, workload = target.split("/", 1)
            chosen = [v for v in views if v.namespace == namespace and v.workload == workload]
        else:
            chosen = [v for v in views if v.workload == target and v.namespace == self.namespace]
            chosen = chosen or [v for v in views if v.namespace == target]
        if not chosen:
            workloads = sorted({v.workload for v in views})
            namespaces = sorted({v.namespace for v in views})
            raise UnknownWorkload(
                f"no workload or namespace {target!r} (workloads: {', '.join(workloads) or 'none'}; namespaces: {', '.join(namespaces) or 'none'})"
            )
        return chosen

    def _source(self, source: str) -> InstanceView:
        chosen = [v for v in self._select(source) if v.running] or self._select(source)
        return chosen[0]

    def _url(self, service: str, path: str) -> tuple[str, str]:
        if not path.startswith("/"):
            raise LabError(f"path must start with '/': {path!r}")
        name = service.split(".", 1)[0]
        ports = {v.service: v.service_port for v in self._backend.instances()}
        if name not in ports:
            raise UnknownWorkload(f"no service {service!r} in the lab (services: {', '.join(sorted(ports))})")
        host = f"{service}:{ports[name]}"
        return f"http://{host}{path}", host

    def _sync_states(self) -> dict[str, str]:
        try:
            status = self._control().status()
        except ControlPlaneError:
            return {}
        except LabError:
            return {}
        return {node: _sync_word(info, status.get("version")) for node, info in status.get("nodes", {}).items()}


RESOURCE_COLUMNS = ["namespace", "workload", "instance", "role", "pid", "cpu_percent", "cpu_seconds", "memory_mb"]
MIB = 1024 * 1024


def resources_frame(usages: Sequence[ProcessUsage], sample_s: float) -> pd.DataFrame:
    """lab.resources() from the backend's readings; `attrs["sample_s"]` keeps the window."""
    rows = [
        {
            "namespace": u.namespace,
            "workload": u.workload,
            "instance": u.instance,
            "role": u.role,
            "pid": u.pid,
            "cpu_percent": float(u.cpu_percent),
            "cpu_seconds": float(u.cpu_seconds),
            "memory_mb": u.rss_bytes / MIB,
        }
        for u in usages
    ]
    frame = pd.DataFrame(rows, columns=RESOURCE_COLUMNS)
    frame.attrs["sample_s"] = sample_s
    return frame


def browse_path(paths: Sequence[str]) -> str:
    """The path a service's link opens: the first it serves, product 0 where it takes an id
    (`/reviews/{id}` -> `/reviews/0`, as Bookinfo's own calls), so a click shows a page, not a 404."""
    return fill_path(paths[0], DEFAULT_ID) if paths else "/"


def _first_running(views: Sequence[InstanceView]) -> InstanceView:
    """The instance a service's address points at: the first one that runs, else the first."""
    return next((v for v in views if v.running), views[0])


def _seconds(window: float | str | None) -> float | None:
    """A window as seconds: a number, or text pandas reads as a duration ("30s", "5m")."""
    if window is None:
        return None
    if isinstance(window, str):
        try:
            seconds = pd.Timedelta(window).total_seconds()
        except ValueError as exc:
            raise LabError(f"window {window!r} is not a duration (say 30, '30s' or '5m')") from exc
    else:
        seconds = float(window)
    if not seconds > 0:
        raise LabError(f"window must be positive, got {window!r}")
    return seconds


KIND_NAMES = {
    "vs": "VirtualService",
    "dr": "DestinationRule",
    "pa": "PeerAuthentication",
    "ap": "AuthorizationPolicy",
    "gw": "Gateway",
}


def _kind(name: str) -> str:
    """A kind from its name in any case, its plural, or kubectl's short name."""
    lowered = name.lower().rstrip("s") if name.lower() not in KIND_NAMES else name.lower()
    if lowered in KIND_NAMES:
        return KIND_NAMES[lowered]
    for kind in config.KINDS:
        if kind.lower() in (name.lower(), lowered):
            return kind
    raise UnknownWorkload(f"unknown kind {name!r}: known kinds are {', '.join(sorted(config.KINDS))} (short: vs, dr, pa, ap, gw)")


def _group(views: list[InstanceView]) -> dict[tuple[str, str], list[InstanceView]]:
    groups: dict[tuple[str, str], list[InstanceView]] = {}
    for view in views:
        groups.setdefault((view.namespace, view.workload), []).append(view)
    return groups


def _sync_word(info: Mapping[str, Any], version: int | None) -> str:
    """istioctl proxy-status's words: SYNCED, STALE (not yet ACKed), NACK."""
    if info.get("nacked") is not None and (info.get("acked") or 0) < info["nacked"]:
        return "NACK"
    if version is not None and info.get("acked") == version:
        return "SYNCED"
    return "STALE"
