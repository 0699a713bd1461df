"""The local backend: every workload and sidecar is a process on this machine.

What Kubernetes gives a mesh, done with processes and loopback ports:

- a pod's IP:port        -> a loopback port allocated once per instance (the
                            endpoint); it never moves, with or without a sidecar
- cluster DNS            -> dns.json, service host -> endpoints, which
                            un-injected apps read (meshkit.demo.resolver)
- iptables interception  -> the sidecar owns the endpoint port and forwards to
                            the app's private port (inbound); the app's
                            HTTP_PROXY points at the sidecar (outbound)
- injection              -> a restart of the instance with a sidecar, so the
                            learner sees before and after
- the ingress gateway    -> a proxy in gateway mode and no app; its endpoint
                            port is the loopback port the browser opens, where
                            its listener takes plain HTTP (the Gateway
                            server port, 8080, stands for it)

Every process is recorded in lab.json as (pid, create time). A Lab created
after a kernel restart reads it, reattaches to what still runs, restarts what
died and stops strays, so there are no orphans and no "address already in use".
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from meshkit.backends import processes
from meshkit.backends.base import APP, CONTROL_PLANE, CONTROL_PLANE_NAME, SIDECAR, Entry, InstanceView, ProcessUsage, Progress
from meshkit.backends.processes import ProcessRecord
from meshkit.control.client import ControlClient
from meshkit.demo.apps import GATEWAY_PORTS, Call, Latency, WorkloadSpec
from meshkit.demo.resolver import qualify, write_resolver
from meshkit.errors import ControlPlaneError, LabError, LabNotRunning, PortInUse, UnknownWorkload
from meshkit.files import read_json_or_none, write_json_atomic
from meshkit.home import LabHome
from meshkit.names import service_host
from meshkit.ports import accepting, free_port, port_is_free, who_listens

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
"""How long a process may take to come up on a busy 2-core machine."""

PORT_RETRIES = 3
"""How often an instance is started again on new ports when one was taken."""
APP_EXIT_PORT_TAKEN = 3
"""`python -m meshkit.demo` exits with this when its port is taken."""
SIDECAR_EXIT_PORT_TAKEN = 1
"""`python -m meshkit.sidecar` exits with this when one of its ports is taken."""


def spec_to_dict(spec: WorkloadSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> WorkloadSpec:
    fields = dict(data)
    fields["latency"] = Latency(**fields["latency"])
    fields["calls"] = tuple(Call(**c) for c in fields["calls"])
    if "paths" in fields:
        fields["paths"] = tuple(fields["paths"])
    return WorkloadSpec(**fields)


def instance_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The control plane's registry record for one instance (docs/internals.md).

    A gateway is registered without a service: it is no destination inside
    the mesh (its port takes plain HTTP from outside), only a caller with an
    identity and a config of its own.
    """
    spec = spec_from_dict(rec["spec"])
    return {
        "instance": rec["instance"],
        "workload": spec.name,
        "namespace": rec["namespace"],
        "service": None if spec.gateway else spec.service,
        "service_port": None if spec.gateway else spec.port,
        "version": spec.version,
        "service_account": spec.service_account,
        "labels": spec.labels,
        "address": None if spec.gateway else HOST,
        "port": None if spec.gateway else rec["port"],
        "sidecar": bool(rec["sidecar"]),
    }


def is_gateway(rec: dict[str, Any]) -> bool:
    """The instance is an ingress gateway: a proxy with no app."""
    return bool(rec["spec"].get("gateway"))


def dns_table(instances: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """service host -> endpoints, in a stable order."""
    table: dict[str, list[tuple[str, int]]] = {}
    for key in sorted(instances):
        rec = instances[key]
        spec = rec["spec"]
        if is_gateway(rec):
            continue
        table.setdefault(service_host(spec["service"], rec["namespace"]), []).append((HOST, rec["port"]))
    return table


def lab_processes(state: dict[str, Any]) -> list[tuple[tuple[str, str, str, str], ProcessRecord]]:
    """Every recorded process of the lab with its (namespace, workload,
    instance, role): the control plane first, then each instance's app and
    sidecar in the instances' stable order."""
    found = []
    control = state.get("control") or {}
    if control.get("proc"):
        found.append((("", CONTROL_PLANE_NAME, CONTROL_PLANE_NAME, CONTROL_PLANE), ProcessRecord.from_dict(control["proc"])))
    for key in sorted(state.get("instances", {})):
        rec = state["instances"][key]
        for field, role in (("app_proc", APP), ("sidecar_proc", SIDECAR)):
            if rec.get(field):
                labels = (rec["namespace"], rec["spec"]["name"], rec["instance"], role)
                found.append((labels, ProcessRecord.from_dict(rec[field])))
    return found


class LocalBackend:
    """Workloads, sidecars and the control plane as local processes."""

    name = "local"

    def __init__(self, home: LabHome, cert_lifetime_s: float | None = None, otlp_endpoint: str | None = None) -> None:
        self.home = home
        # Workload certificate lifetime for the CA (None: the control plane's default, 24 h).
        self.cert_lifetime_s = cert_lifetime_s
        # Where the control plane sends spans (None: as before, or $OTEL_EXPORTER_OTLP_ENDPOINT).
        self.otlp_endpoint = otlp_endpoint
        self._client: ControlClient | None = None
        self._rr: dict[str, int] = {}

    # -- state -------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        state = read_json_or_none(self.home.lab_json)
        if not isinstance(state, dict):
            return {"backend": self.name, "control": None, "instances": {}}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.home.lab_json, state)

    @staticmethod
    def _proc(data: dict[str, Any] | None) -> ProcessRecord | None:
        return ProcessRecord.from_dict(data) if data else None

    def _view(self, rec: dict[str, Any]) -> InstanceView:
        spec = rec["spec"]
        running = is_gateway(rec) or processes.alive(self._proc(rec.get("app_proc")))
        if rec["sidecar"]:
            running = running and processes.alive(self._proc(rec.get("sidecar_proc")))
        return InstanceView(
            namespace=rec["namespace"],
            instance=rec["instance"],
            workload=spec["name"],
            service=spec["service"],
            version=spec["version"],
            app=rec["app"],
            service_port=spec["port"],
            port=rec["port"],
            sidecar=bool(rec["sidecar"]),
            running=running,
            paths=tuple(spec.get("paths") or ()),
        )

    # -- control plane -----------------------------------------------------

    def control(self) -> ControlClient:
        if self._client is None:
            self._client = ControlClient.from_home(self.home.root)
        return self._client

    def running(self) -> bool:
        state = self._load()
        control = state.get("control")
        if not control or not processes.alive(self._proc(control.get("proc"))):
            return False
        try:
            self.control().healthz()
        except (ControlPlaneError, LabNotRunning):
            return False
        return True

    def _require_running(self) -> dict[str, Any]:
        state = self._load()
        control = state.get("control")
        if not control or not processes.alive(self._proc(control.get("proc"))):
            raise LabNotRunning(f"no lab is running in {self.home.root}: start one with Lab().up() or `meshkit up`")
        return state

    def _start_control(self, state: dict[str, Any], wanted_port: int | None) -> None:
        previous = state.get("control") or {}
        proc = self._proc(previous.get("proc"))
        lifetime = self.cert_lifetime_s
        otlp = self.otlp_endpoint
        same_settings = lifetime in (None, previous.get("cert_lifetime_s")) and otlp in (None, previous.get("otlp_endpoint"))
        if processes.alive(proc) and self._healthy() and wanted_port in (None, previous.get("port")) and same_settings:
            return
        processes.stop(proc)
        if wanted_port is not None:
            if not port_is_free(wanted_port):
                raise PortInUse(f"port {wanted_port} on {HOST} is taken by {who_listens(wanted_port)}; choose another port for the control plane")
            port = wanted_port
        else:
            port = previous.get("port", 0)
            if port and not port_is_free(port):
                port = 0
        with contextlib.suppress(FileNotFoundError):
            self.home.control_json.unlink()
        if lifetime is None:
            lifetime = previous.get("cert_lifetime_s")
        if otlp is None:
            otlp = previous.get("otlp_endpoint")
        extra = [] if lifetime is None else ["--cert-lifetime", f"{lifetime:g}"]
        extra += [] if otlp is None else ["--otlp-endpoint", otlp]
        record = processes.spawn(
            "meshkit.control",
            ["--home", str(self.home.root), "--port", str(port), *extra],
            self.home.log_dir / "control.log",
        )
        self._client = None

        def listening() -> bool:
            info = read_json_or_none(self.home.control_json)
            return isinstance(info, dict) and info.get("pid") == record.pid and self._healthy()

        if not processes.wait_until(listening, START_TIMEOUT_S, 0.05):
            reason = processes.exit_reason(record)
            processes.stop(record)
            raise LabError(f"the control plane did not start: {reason}")
        url = read_json_or_none(self.home.control_json)["url"]
        state["control"] = {"port": int(url.rsplit(":", 1)[1]), "url": url, "proc": record.to_dict(), "cert_lifetime_s": lifetime,
                            "otlp_endpoint": otlp}

    def _healthy(self) -> bool:
        self._client = None
        try:
            self.control().healthz()
            return True
        except (ControlPlaneError, LabNotRunning):
            return False

    # -- lifecycle ---------------------------------------------------------

    def up(self, progress: Progress | None = None, control_port: int | None = None) -> None:
        say = progress or (lambda _line: None)
        self.home.create()
        with self.home.locked():
            state = self._load()
            self._stop_strays(state)
            say("starting the control plane")
            self._start_control(state, control_port)
            self._save(state)
            broken = [rec for rec in state["instances"].values() if not self._instance_alive(rec, state)]
            if broken:
                say(f"restarting {len(broken)} instance(s) that were not running")
                self._restart(state, broken, say)
            self._write_dns(state)
            for rec in state["instances"].values():
                self._register(rec)
            self._save(state)
            self._wait_synced(state, say)

    def down(self) -> None:
        with self.home.locked():
            state = self._load()
            records: list[ProcessRecord] = []
            for rec in state["instances"].values():
                records += [r for r in (self._proc(rec.get("sidecar_proc")), self._proc(rec.get("app_proc"))) if r]
            control = state.get("control") or {}
            processes.stop_records(records)
            processes.stop(self._proc(control.get("proc")))
            self._stop_strays({"instances": {}, "control": None})
            for name in ("lab.json", "control.json", "control-token", "store.json", "nodes.json", "dns.json"):
                with contextlib.suppress(FileNotFoundError):
                    (self.home.root / name).unlink()
            for folder in (self.home.run_dir, self.home.log_dir, self.home.root / "ca", self.home.root / "telemetry"):
                shutil.rmtree(folder, ignore_errors=True)
            self._client = None

    def _stop_strays(self, state: dict[str, Any]) -> None:
        """Stop processes that belong to this lab but are not in its records.

        They exist when a Python process died between starting a process and
        recording it; they are found by the lab directory in their command line.
        """
        known = {ProcessRecord.from_dict(r).pid for r in self._all_proc_dicts(state)}
        marker = str(self.home.root)
        strays = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if proc.info["pid"] in known or len(cmdline) < 3 or cmdline[1:2] != ["-m"]:
                continue
            if cmdline[2] not in ("meshkit.control", "meshkit.sidecar", "meshkit.demo"):
                continue
            if any(arg == marker or arg.startswith(marker + "/") for arg in cmdline[3:]):
                strays.append(proc)
        if strays:
            processes.stop_all(strays)

    @staticmethod
    def _all_proc_dicts(state: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        control = state.get("control") or {}
        if control.get("proc"):
            found.append(control["proc"])
        for rec in state.get("instances", {}).values():
            found += [rec[k] for k in ("app_proc", "sidecar_proc") if rec.get(k)]
        return found

    # -- workloads ---------------------------------------------------------

    def instances(self) -> list[InstanceView]:
        state = self._load()
        return [self._view(rec) for key in sorted(state["instances"]) if not is_gateway(rec := state["instances"][key])]

    def gateways(self) -> list[InstanceView]:
        state = self._load()
        return [self._view(rec) for key in sorted(state["instances"]) if is_gateway(rec := state["instances"][key])]

    def deploy(
        self,
        app: str,
        specs: Sequence[WorkloadSpec],
        namespace: str,
        inject: bool,
        progress: Progress | None = None,
    ) -> list[InstanceView]:
        say = progress or (lambda _line: None)
        with self.home.locked():
            state = self._require_running()
            new = []
            for spec in specs:
                for index in range(spec.replicas):
                    instance = f"{spec.name}-{index}"
                    key = f"{namespace}/{instance}"
                    if key in state["instances"]:
                        continue
                    rec = {
                        "namespace": namespace,
                        "instance": instance,
                        "app": app,
                        "spec": spec_to_dict(spec),
                        "port": self._fresh_port(state),
                        "sidecar": inject or spec.gateway,  # a gateway is its proxy
                    }
                    state["instances"][key] = rec
                    new.append(rec)
            self._write_dns(state)
            say(f"starting {len(new)} workload instance(s) of {app}" + (" with sidecars" if inject else ""))
            self._start_all(state, new, say)
            self._save(state)
            return [self._view(rec) for rec in new]

    def undeploy(self, instances: Sequence[InstanceView]) -> None:
        with self.home.locked():
            state = self._require_running()
            recs = [state["instances"].pop(view.node) for view in instances if view.node in state["instances"]]
            self._stop_instances(recs)
            for rec in recs:
                self.control().delete_instance(rec["namespace"], rec["instance"])
            self._write_dns(state)
            self._save(state)
            self._wait_synced(state, lambda _line: None)

    def set_sidecar(self, instances: Sequence[InstanceView], enabled: bool, progress: Progress | None = None) -> None:
        say = progress or (lambda _line: None)
        with self.home.locked():
            state = self._require_running()
            recs = [
                rec
                for rec in (state["instances"][v.node] for v in instances)
                if rec["sidecar"] != enabled and not is_gateway(rec)
            ]
            if not recs:
                return
            say(f"{'injecting' if enabled else 'removing'} sidecars: restarting {len(recs)} instance(s)")
            self._stop_instances(recs)
            for rec in recs:
                rec["sidecar"] = enabled
            self._start_all(state, recs, say)
            self._save(state)

    def entry(self, source: InstanceView, host: str) -> Entry:
        # Traffic needs the workloads, not the control plane: sidecars keep
        # serving on their last config while it is away.
        state = self._load()
        if not state["instances"]:
            raise LabNotRunning(f"no lab is running in {self.home.root}: start one with Lab().up() or `meshkit up`")
        rec = state["instances"].get(source.node)
        if rec is None:
            raise UnknownWorkload(f"no instance {source.node} in this lab")
        if rec["sidecar"]:
            return Entry(proxy=(HOST, rec["outbound"]), connect_to=None)
        endpoints = self._resolve(state, host, rec["namespace"])
        turn = self._rr.get(host, 0)
        self._rr[host] = turn + 1
        return Entry(proxy=None, connect_to=endpoints[turn % len(endpoints)])

    def sidecar_admin(self, instance: InstanceView) -> str | None:
        rec = self._load()["instances"].get(instance.node)
        if rec is None or not rec["sidecar"]:
            return None
        return f"http://{HOST}:{rec['admin']}"

    def sidecar_admin_token(self) -> str | None:
        """The control plane's admin token, kept in the lab's home across control plane restarts:
        the lab's one secret, so a sidecar's protected admin pages open to the lab and to no
        other process on the machine (meshkit.sidecar.admin)."""
        try:
            token = (self.home.root / "control-token").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        return token or None

    def local_address(self, instance: InstanceView) -> str | None:
        """The instance's endpoint port on loopback: the app's, or with a sidecar
        the sidecar's inbound port, which forwards to the app (dns.json lists the same)."""
        return f"{HOST}:{instance.port}"

    def usage(self, window_s: float) -> list[ProcessUsage]:
        """Processes that are gone (a crashed app, a lab going down) are left out."""
        owned = lab_processes(self._load())
        measured = processes.sample([record for _labels, record in owned], window_s)
        return [
            ProcessUsage(namespace, workload, instance, role, found.pid, found.cpu_percent, found.cpu_seconds, found.rss_bytes)
            for ((namespace, workload, instance, role), _record), found in zip(owned, measured, strict=True)
            if found is not None
        ]

    def log_path(self, instance: InstanceView, kind: str) -> Path:
        """Where an instance's log goes: kind "app" (the app's output), "sidecar"
        (the proxy's own log) or "access" (its access log, JSON lines)."""
        suffix = {"app": "app.log", "sidecar": "sidecar.log", "access": "access.log"}[kind]
        return self.home.log_dir / f"{instance.namespace}.{instance.instance}.{suffix}"

    # -- helpers -----------------------------------------------------------

    @staticmethod
    def _resolve(state: dict[str, Any], host: str, namespace: str) -> list[tuple[str, int]]:
        """Kubernetes DNS for un-injected callers, as the demo apps resolve."""
        fqdn = qualify(host.split(":", 1)[0], namespace)
        endpoints = dns_table(state["instances"]).get(fqdn)
        if not endpoints:
            known = sorted({rec["spec"]["service"] for rec in state["instances"].values()})
            raise UnknownWorkload(f"no service {host!r} in namespace {namespace!r} (services: {', '.join(known)})")
        return endpoints

    def _fresh_port(self, state: dict[str, Any]) -> int:
        taken = {rec["port"] for rec in state["instances"].values()}
        while True:
            port = free_port(HOST)
            if port not in taken:
                return port

    def _write_dns(self, state: dict[str, Any]) -> None:
        write_resolver(self.home.dns_json, dns_table(state["instances"]))

    def _register(self, rec: dict[str, Any]) -> None:
        answer = self.control().put_instance(instance_record(rec))
        rec["node_token"] = answer["node_token"]

    def _instance_alive(self, rec: dict[str, Any], state: dict[str, Any]) -> bool:
        if not is_gateway(rec) and not processes.alive(self._proc(rec.get("app_proc"))):
            return False
        if not rec["sidecar"]:
            return True
        return processes.alive(self._proc(rec.get("sidecar_proc"))) and rec.get("control_url") == state["control"]["url"]

    def _restart(self, state: dict[str, Any], recs: list[dict[str, Any]], say: Progress) -> None:
        self._stop_instances(recs)
        self._start_all(state, recs, say)

    def _stop_instances(self, recs: Sequence[dict[str, Any]]) -> None:
        records = []
        for rec in recs:
            records += [r for r in (self._proc(rec.pop("sidecar_proc", None)), self._proc(rec.pop("app_proc", None))) if r]
        processes.stop_records(records)

    def _start_all(self, state: dict[str, Any], recs: Sequence[dict[str, Any]], say: Progress) -> None:
        """Start instances as a batch and wait for all: on 2 cores the
        processes' start-up overlaps, which is most of the time saved."""
        if not recs:
            return
        # Registered first: a sidecar needs its node token (and, with it, its
        # certificate) to start. The endpoint is down while the instance
        # restarts whatever the record says, as a pod is during a restart.
        for rec in recs:
            self._register(rec)
        for rec in recs:
            self._spawn_instance(state, rec)
        self._save(state)
        self._wait_ready(state, recs, say)
        self._wait_synced(state, say)

    def _wait_synced(self, state: dict[str, Any], say: Progress) -> None:
        """Return only when every sidecar runs the latest config, so what the
        learner looks at next (workloads(), a call) shows the new state."""
        nodes = [f"{r['namespace']}/{r['instance']}" for r in state["instances"].values() if r["sidecar"]]
        if not nodes:
            return
        say(f"waiting for {len(nodes)} sidecar(s) to ACK the new config")
        self.control().wait_acked(self.control().healthz()["version"], nodes=nodes, timeout=START_TIMEOUT_S)

    def _spawn_instance(self, state: dict[str, Any], rec: dict[str, Any]) -> None:
        spec = spec_from_dict(rec["spec"])
        stem = f"{rec['namespace']}.{rec['instance']}"
        env = {"MESHKIT_INSTANCE": rec["instance"]}
        if spec.gateway:
            self._spawn_gateway(state, rec, spec, stem)
            return
        if rec["sidecar"]:
            rec["app_port"] = free_port(HOST)
            rec["outbound"] = free_port(HOST)
            rec["admin"] = free_port(HOST)
            rec["control_url"] = state["control"]["url"]
            env["HTTP_PROXY"] = f"http://{HOST}:{rec['outbound']}"
            app_port = rec["app_port"]
        else:
            for key in ("app_port", "outbound", "admin", "control_url"):
                rec.pop(key, None)
            app_port = rec["port"]
        app_file = self.home.run_dir / f"{stem}.app.json"
        write_json_atomic(app_file, spec.app_spec(namespace=rec["namespace"], host=HOST, port=app_port, resolver=str(self.home.dns_json)))
        rec["app_proc"] = processes.spawn("meshkit.demo", ["--spec", str(app_file)], self.home.log_dir / f"{stem}.app.log", env).to_dict()
        if rec["sidecar"]:
            boot_file = self.home.run_dir / f"{stem}.sidecar.json"
            bootstrap = self._bootstrap(rec, spec, state["control"]["url"], self.sidecar_admin_token())
            bootstrap["telemetry"] = {"access_log": str(self.log_path(self._view(rec), "access"))}
            write_json_atomic(boot_file, bootstrap, mode=0o600)
            rec["sidecar_proc"] = processes.spawn(
                "meshkit.sidecar", ["--bootstrap", str(boot_file)], self.home.log_dir / f"{stem}.sidecar.log"
            ).to_dict()

    def _spawn_gateway(self, state: dict[str, Any], rec: dict[str, Any], spec: WorkloadSpec, stem: str) -> None:
        """The gateway's proxy alone: its listener owns the instance's port, the lab's ingress port."""
        rec["outbound"] = rec["port"]
        rec["admin"] = free_port(HOST)
        rec["control_url"] = state["control"]["url"]
        boot_file = self.home.run_dir / f"{stem}.sidecar.json"
        bootstrap = self._bootstrap(rec, spec, state["control"]["url"], self.sidecar_admin_token())
        bootstrap["inbound"] = None
        bootstrap["gateway"] = {"ports": list(GATEWAY_PORTS)}
        bootstrap["telemetry"] = {"access_log": str(self.log_path(self._view(rec), "access"))}
        write_json_atomic(boot_file, bootstrap, mode=0o600)
        rec["sidecar_proc"] = processes.spawn(
            "meshkit.sidecar", ["--bootstrap", str(boot_file)], self.home.log_dir / f"{stem}.sidecar.log"
        ).to_dict()

    @staticmethod
    def _bootstrap(rec: dict[str, Any], spec: WorkloadSpec, control_url: str, admin_token: str | None) -> dict[str, Any]:
        return {
            "node": f"{rec['namespace']}/{rec['instance']}",
            "workload": {
                "name": spec.name,
                "namespace": rec["namespace"],
                "service": spec.service,
                "version": spec.version,
                "service_account": spec.service_account,
                "labels": spec.labels,
            },
            "host": HOST,
            "inbound": {"port": rec["port"], "app_port": rec["app_port"]} if "app_port" in rec else None,
            "outbound": {"port": rec["outbound"]},
            "admin": {"port": rec["admin"], "token": admin_token},
            "control_plane": {"url": control_url, "token": rec["node_token"]},
            "static_snapshot": None,
        }

    def _wait_ready(self, state: dict[str, Any], recs: Sequence[dict[str, Any]], say: Progress) -> None:
        pending = list(recs)
        total = len(pending)
        deadline = time.monotonic() + START_TIMEOUT_S
        retries: dict[int, int] = {}
        with httpx.Client(timeout=0.5, trust_env=False) as http:
            while pending:
                for rec in list(pending):
                    if self._lost_a_port(rec) and retries.get(id(rec), 0) < PORT_RETRIES:
                        retries[id(rec)] = retries.get(id(rec), 0) + 1
                        self._respawn_on_new_ports(state, rec)
                        continue
                    self._check_started(rec)
                    if self._ready(rec, http):
                        pending.remove(rec)
                say(f"waiting for workloads: {total - len(pending)}/{total} ready")
                if pending and time.monotonic() > deadline:
                    names = ", ".join(f"{r['namespace']}/{r['instance']}" for r in pending)
                    raise LabError(f"these instances did not become ready in {START_TIMEOUT_S:.0f} s: {names}")
                if pending:
                    time.sleep(0.05)

    def _lost_a_port(self, rec: dict[str, Any]) -> bool:
        """True when one of the instance's processes exited because a port it
        was given was taken between allocation and bind (another program won
        the race for a free port: rare, but certain on a busy machine)."""
        for key, code in (("app_proc", APP_EXIT_PORT_TAKEN), ("sidecar_proc", SIDECAR_EXIT_PORT_TAKEN)):
            proc = self._proc(rec.get(key))
            if proc is not None and not processes.alive(proc) and processes.exit_code(proc) == code:
                return True
        return False

    def _respawn_on_new_ports(self, state: dict[str, Any], rec: dict[str, Any]) -> None:
        """Start the instance again on fresh ports; its endpoint moves only if
        the endpoint port itself was taken (then DNS and the registry follow)."""
        self._stop_instances([rec])
        if not port_is_free(rec["port"]):
            rec["port"] = self._fresh_port(state)
            self._write_dns(state)
            self._register(rec)
        self._spawn_instance(state, rec)
        self._save(state)

    def _check_started(self, rec: dict[str, Any]) -> None:
        for key, what in (("app_proc", "app"), ("sidecar_proc", "sidecar")):
            proc = self._proc(rec.get(key))
            if proc is not None and not processes.alive(proc):
                raise LabError(f"{what} of {rec['namespace']}/{rec['instance']} exited: {processes.exit_reason(proc)}")

    def _ready(self, rec: dict[str, Any], http: httpx.Client) -> bool:
        """The instance's own processes listen on its ports, and its sidecar has a config and a certificate.

        Whether a port answers is asked first, as it is cheap; who answers
        decides. On a busy machine (another lab starting, say) another program
        can take one of our ports between `free_port()` and our process's bind
        and answer there while our process is still starting; ours then exits
        (port taken), and an instance taken as ready would send its traffic to
        that other program, or never ACK a config.
        """
        if not rec["sidecar"]:
            return accepting(rec["port"], HOST) and self._holds(rec, "app_proc", {rec["port"]})
        if is_gateway(rec):
            if not self._holds(rec, "sidecar_proc", {rec["port"], rec["admin"]}):
                return False
        elif not accepting(rec["app_port"], HOST) or not self._holds(rec, "app_proc", {rec["app_port"]}):
            return False
        elif not self._holds(rec, "sidecar_proc", {rec["port"], rec["outbound"], rec["admin"]}):
            return False
        try:
            return http.get(f"http://{HOST}:{rec['admin']}/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def _holds(self, rec: dict[str, Any], key: str, ports: set[int]) -> bool:
        return ports <= processes.listening_ports(self._proc(rec.get(key)))


def local_backend(home: Path) -> LocalBackend:
    return LocalBackend(LabHome(home))
