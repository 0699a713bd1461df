"""The three paths the benchmark measures, as real processes on loopback.

    direct:   load -> upstream
    sidecar:  load -> client sidecar (outbound) -> server sidecar (inbound) -> upstream
    haproxy:  load -> client haproxy -> server haproxy -> upstream

A sidecar pair runs the meshkit of this checkout, or (``SidecarCode`` from
``git_tree``) the meshkit of an earlier commit checked out beside it, so a
change's before and after are measured in one run on the same machine state.

Both pairs are configured statically (no control plane), both receive
requests in proxy form (``GET http://upstream:9080/``) as an app with
HTTP_PROXY would send them, and both keep connections alive on both sides.
Each HAProxy runs one thread, like the single event loop of a sidecar, so
"per process" means the same thing on both sides of a ratio.

Every process is started through ``Processes``, which stops them all on the
way out, whatever happened.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

from certs import BenchCA

from meshkit.errors import LabError
from meshkit.ports import accepting, free_port

SERVICE = "upstream"
SERVICE_HOST = f"{SERVICE}.default.svc.cluster.local"
SERVICE_PORT = 9080
# What the load generator and wrk ask for, in proxy form through the pairs.
PROXY_URL = f"http://{SERVICE}:{SERVICE_PORT}/"
READY_TIMEOUT_S = 20.0
STOP_GRACE_S = 3.0
HERE = Path(__file__).resolve().parent


@dataclass
class Proc:
    """A process we started, with the measurements taken from outside it."""

    role: str
    popen: subprocess.Popen[bytes]
    log: Path

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the process and any children it started."""
        proc = psutil.Process(self.popen.pid)
        user = system = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            user += t.user
            system += t.system
        return user, system

    def rss_mb(self) -> float:
        return float(psutil.Process(self.popen.pid).memory_info().rss) / 2**20

    def peak_rss_mb(self) -> float | None:
        """The kernel's high-water mark of resident memory (Linux), else None."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"


class Processes:
    """Starts processes and guarantees they are gone when the block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Proc] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def start(self, role: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
        log = self.workdir / f"{role}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd
            )
        proc = Proc(role, popen, log)
        self.started.append(proc)
        return proc

    def stop(self, procs: list[Proc]) -> None:
        """Stop some of the processes started (a pair started again on new ports)."""
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.terminate()
                proc.popen.wait(timeout=STOP_GRACE_S)
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.started:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=STOP_GRACE_S)
        self.started.clear()


BIND_ATTEMPTS = 3
LOG_BUFFER = 100_000


def wait_ready(proc: Proc, ready: Callable[[], bool], what: str) -> None:
    """Poll until ``ready()``; fail naming the process and its last words if it dies or stalls."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise LabError(f"{what} exited with code {proc.popen.returncode}:\n{proc.log_tail()}")
        if ready():
            return
        time.sleep(0.05)
    raise LabError(f"{what} was not ready after {READY_TIMEOUT_S:g} s:\n{proc.log_tail()}")


@dataclass(frozen=True)
class Target:
    """One path to the upstream: where to send, and the proxy processes on the way."""

    name: str
    label: str
    url: str
    proxy: tuple[str, int] | None
    proxies: tuple[Proc, ...]
    # meshkit sidecars: their admin ports, to read the TLS handshake counters (/certs).
    admin_ports: tuple[int, ...] = ()
    # meshkit sidecars writing access logs (flushed around each run).
    logs: bool = False


# ---------------------------------------------------------------- upstream


HAPROXY_DEFAULTS = """\
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
"""


def haproxy_upstream_config(port: int) -> str:
    """HAProxy answering every request itself: a fixed 200 with no backend."""
    return (
        HAPROXY_DEFAULTS
        + f"""
frontend upstream
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok
"""
    )


def haproxy_pair_configs(
    client_port: int, server_port: int, upstream_port: int, tls: tuple[tuple[Path, Path], tuple[Path, Path]] | None = None
) -> tuple[str, str]:
    """Client-side and server-side HAProxy, each forwarding to the next hop over pooled connections.

    With `tls` ((client crt, ca-file), (server crt, ca-file)) the hop between
    them is mutual TLS 1.3, both ends verifying the other's certificate
    against the CA, as the meshkit mTLS pair does."""
    client_tls = server_tls = ""
    if tls is not None:
        (client_crt, ca_file), (server_crt, _) = tls
        client_tls = f" ssl crt {client_crt} ca-file {ca_file} verify required ssl-min-ver TLSv1.3"
        server_tls = f" ssl crt {server_crt} ca-file {ca_file} verify required ssl-min-ver TLSv1.3"
    client = (
        HAPROXY_DEFAULTS
        + f"""
frontend outbound
    bind 127.0.0.1:{client_port}
    default_backend server_side

backend server_side
    http-reuse always
    server server_side 127.0.0.1:{server_port}{client_tls}
"""
    )
    server = (
        HAPROXY_DEFAULTS
        + f"""
frontend inbound
    bind 127.0.0.1:{server_port}{server_tls}
    default_backend app

backend app
    http-reuse always
    server app 127.0.0.1:{upstream_port}
"""
    )
    return client, server


def start_haproxy(procs: Processes, haproxy: str, role: str, config: str, port: int) -> Proc:
    path = procs.workdir / f"{role}.cfg"
    path.write_text(config)
    proc = procs.start(role, [haproxy, "-db", "-f", str(path)])
    wait_ready(proc, lambda: accepting(port), f"haproxy ({role})")
    return proc


def start_upstream(procs: Processes, haproxy: str | None) -> tuple[int, str]:
    """The fixed-response upstream: HAProxy when available, else the Python one. Returns (port, description)."""
    port = free_port()
    if haproxy:
        start_haproxy(procs, haproxy, "upstream", haproxy_upstream_config(port), port)
        return port, "HAProxy `http-request return` (fixed 200, one thread)"
    proc = procs.start("upstream", [sys.executable, str(HERE / "upstream.py"), str(port)])
    wait_ready(proc, lambda: accepting(port), "the Python upstream")
    return port, "benchmarks/upstream.py (Python, httptools on uvloop; may limit direct saturation)"


def direct(upstream_port: int) -> Target:
    return Target("direct", "direct", f"http://127.0.0.1:{upstream_port}/", None, ())


def haproxy_pair(procs: Processes, haproxy: str, upstream_port: int, ca: BenchCA | None = None) -> Target:
    """The HAProxy pair; with `ca`, mutual TLS between the two (target "haproxy-tls")."""
    name, label = ("haproxy-tls", "HAProxy pair, TLS") if ca is not None else ("haproxy", "HAProxy pair")
    client_port, server_port = free_port(), free_port()
    tls = None
    if ca is not None:
        tls = (ca.haproxy_files(procs.workdir, f"{name}-client"), ca.haproxy_files(procs.workdir, f"{name}-server"))
    client_cfg, server_cfg = haproxy_pair_configs(client_port, server_port, upstream_port, tls)
    server = start_haproxy(procs, haproxy, f"{name}-server", server_cfg, server_port)
    client = start_haproxy(procs, haproxy, f"{name}-client", client_cfg, client_port)
    return Target(name, label, PROXY_URL, ("127.0.0.1", client_port), (client, server))


# ---------------------------------------------------------------- meshkit sidecars


@dataclass(frozen=True)
class SidecarCode:
    """Which meshkit a sidecar runs: the source tree put first on its PYTHONPATH.

    `ref` is None for this checkout (the code as it is now, "after"), else the
    short commit of an earlier tree ("before"). The tree is also the sidecar's
    working directory, because ``python -m`` puts the working directory ahead
    of PYTHONPATH: started from this checkout, a "before" sidecar would
    otherwise import this checkout's meshkit.
    """

    tree: Path
    ref: str | None = None

    def env(self) -> dict[str, str]:
        rest = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": str(self.tree) + (os.pathsep + rest if rest else "")}


THIS_CHECKOUT = SidecarCode(HERE.parent)


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"git {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


@contextmanager
def git_tree(ref: str, into: Path) -> Iterator[SidecarCode]:
    """`ref`'s tree checked out (``git worktree add --detach``) under `into`, removed again on the way out.

    A worktree shares this repository's objects, so any commit it has can be
    measured without a clone; removing it also removes git's record of it."""
    try:
        commit = _git("rev-parse", "--verify", "--short", f"{ref}^{{commit}}")
    except LabError as exc:
        raise LabError(f"--baseline {ref}: not a commit of this repository ({exc})") from exc
    tree = into / f"meshkit-{commit}"
    _git("worktree", "add", "--detach", "--quiet", str(tree), commit)
    try:
        yield SidecarCode(tree, commit)
    finally:
        _git("worktree", "remove", "--force", str(tree))


def static_snapshot(node: str, server_inbound_port: int, mtls: bool = False) -> dict[str, object]:
    """The one service both sidecars know: the upstream, behind the server sidecar's inbound port.

    With `mtls` the endpoint is marked as a sidecar with its service account,
    so auto mTLS dials it with mutual TLS and checks its identity."""
    labels = {"app": SERVICE, "version": "v1"}
    endpoint = {
        "address": "127.0.0.1",
        "port": server_inbound_port,
        "instance": "upstream-v1-0",
        "workload": "upstream-v1",
        "version": "v1",
        "labels": labels,
        # Static sidecars have no control plane, so no CA and no workload
        # certificate: marked as a sidecar, the endpoint would get auto mTLS
        # and every request would fail. The pair talks plaintext (as it did
        # before mTLS); the mTLS pair gets certificates (static_identity).
        "sidecar": mtls,
        "service_account": "upstream-v1",
    }
    service = {"name": SERVICE, "namespace": "default", "port": SERVICE_PORT, "endpoints": [endpoint]}
    return {"version": 1, "node": node, "services": {SERVICE_HOST: service}}


# The benchmark's sidecars' admin token: /certs and /telemetry/flush need it (meshkit.sidecar.admin).
ADMIN_TOKEN = secrets.token_urlsafe(24)
ADMIN_HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class SidecarPorts:
    outbound: int
    admin: int
    inbound: int | None = None
    app: int | None = None


def sidecar_bootstrap(
    instance: str,
    service: str,
    ports: SidecarPorts,
    server_inbound_port: int,
    telemetry: dict[str, object] | None = None,
    ca: BenchCA | None = None,
) -> dict[str, object]:
    node = f"default/{instance}"
    workload = instance.rsplit("-", 1)[0]
    extra: dict[str, object] = {} if telemetry is None else {"telemetry": telemetry}
    if ca is not None:
        extra["static_identity"] = ca.static_identity(workload)
    return {
        **extra,
        "node": node,
        "workload": {
            "name": workload,
            "namespace": "default",
            "service": service,
            "version": "v1",
            "service_account": workload,
            "labels": {"app": service, "version": "v1"},
        },
        "host": "127.0.0.1",
        "inbound": None if ports.inbound is None else {"port": ports.inbound, "app_port": ports.app},
        "outbound": {"port": ports.outbound},
        "admin": {"port": ports.admin, "token": ADMIN_TOKEN},
        "control_plane": None,
        "static_snapshot": static_snapshot(node, server_inbound_port, mtls=ca is not None),
    }


def admin_ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_sidecar(
    procs: Processes,
    role: str,
    instance: str,
    service: str,
    ports: SidecarPorts,
    server_inbound: int,
    telemetry: dict[str, object] | None = None,
    ca: BenchCA | None = None,
    code: SidecarCode = THIS_CHECKOUT,
) -> Proc:
    path = procs.workdir / f"{role}.json"
    path.write_text(json.dumps(sidecar_bootstrap(instance, service, ports, server_inbound, telemetry, ca), indent=2))
    path.chmod(0o600)
    argv = [sys.executable, "-m", "meshkit.sidecar", "--bootstrap", str(path)]
    proc = procs.start(role, argv, env=code.env(), cwd=code.tree)
    wait_ready(proc, lambda: admin_ready(ports.admin), f"meshkit sidecar ({role})")
    return proc


def sidecar_name(telemetry: str | None, mtls: bool, ref: str | None) -> tuple[str, str]:
    """(target name, label) of a sidecar pair: "sidecar", then "-mtls", "-logs" or "-notel", then "-before"."""
    name, label = "sidecar", "meshkit sidecar pair"
    if mtls:
        name, label = name + "-mtls", label + ", mTLS"
    if telemetry == "logs":
        name, label = name + "-logs", label + ", access logs"
    elif telemetry == "off":
        name, label = name + "-notel", label + ", telemetry off"
    if ref is not None:
        name, label = name + "-before", label + f" (before, {ref})"
    return name, label


def sidecar_pair(
    procs: Processes,
    upstream_port: int,
    telemetry: str | None = None,
    ca: BenchCA | None = None,
    code: SidecarCode = THIS_CHECKOUT,
) -> Target:
    """The sidecar pair. `telemetry` None: the default (metrics, no access log);
    "logs": metrics and an access log per sidecar (target "sidecar-logs");
    "off": nothing recorded (target "sidecar-notel"). With `ca` the pair talks
    mutual TLS ("sidecar-mtls"); with an earlier `code` the names end in "-before"."""
    name, label = sidecar_name(telemetry, ca is not None, code.ref)

    def settings(role: str) -> dict[str, object] | None:
        if telemetry == "off":
            return {"enabled": False}
        if telemetry == "logs":
            # A buffer ten times the default: at saturation a sidecar records over
            # 10000 requests between two flushes, and the default drops the
            # oldest beyond that, unlogged, so the cost measured would be that of
            # logging some of the requests, not all.
            return {"access_log": str(procs.workdir / f"{role}.access.log"), "buffer_size": LOG_BUFFER}
        return None

    # A port chosen free can be taken before the sidecar binds it (by any process's outgoing
    # connection, the server sidecar's own included): start the pair again on new ports then.
    for attempt in range(BIND_ATTEMPTS):
        inbound = free_port()
        server_ports = SidecarPorts(outbound=free_port(), admin=free_port(), inbound=inbound, app=upstream_port)
        client_ports = SidecarPorts(outbound=free_port(), admin=free_port())
        mark = len(procs.started)
        try:
            server = start_sidecar(procs, f"{name}-server", "upstream-v1-0", SERVICE, server_ports, inbound,
                                   settings(f"{name}-server"), ca, code)  # fmt: skip
            client = start_sidecar(procs, f"{name}-client", "bench-client-0", "bench-client", client_ports, inbound,
                                   settings(f"{name}-client"), ca, code)  # fmt: skip
            break
        except LabError as exc:
            if "address already in use" not in str(exc) or attempt == BIND_ATTEMPTS - 1:
                raise
            procs.stop(procs.started[mark:])
    admin = (client_ports.admin, server_ports.admin)
    return Target(name, label, PROXY_URL, ("127.0.0.1", client_ports.outbound), (client, server), admin, telemetry == "logs")


def tls_handshakes(target: Target) -> int | None:
    """TLS handshakes the target's sidecars made or accepted so far (/certs); None for other proxies."""
    if not target.admin_ports:
        return None
    total = 0
    for port in target.admin_ports:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/certs", headers=ADMIN_HEADERS)
            tls = json.loads(conn.getresponse().read())["tls"]
        finally:
            conn.close()
        total += tls["inbound_handshakes"] + tls["outbound_handshakes"]
    return total


def flush_telemetry(target: Target) -> dict[str, int] | None:
    """Write out what the target's sidecars buffered for their access logs; lines logged and records dropped so far.

    Read around a run, so the lines of a run's last second are written (and
    their CPU counted) within it, not in the next path's run. None for a target without access logs."""
    if not target.logs:
        return None
    total = {"logged": 0, "dropped": 0}
    for port in target.admin_ports:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/telemetry/flush", headers=ADMIN_HEADERS)
            status = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        total["logged"] += int(status.get("logged", 0))
        total["dropped"] += int(status.get("dropped", 0))
    return total
