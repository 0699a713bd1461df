"""The `meshkit` command: the same Lab as the notebooks, from a terminal.

Every subcommand is a thin call into meshkit.lab.Lab. Errors meshkit raises on
purpose are printed as one line (`meshkit: error: ...`) with exit status 1;
anything else is a bug, reported as one line too, with the traceback shown
only when MESHKIT_DEBUG=1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from meshkit.errors import LabError, MeshkitError, UnknownWorkload
from meshkit.lab import Lab
from meshkit.loadgen import summary
from meshkit.progress import StatusLine
from meshkit.tables import human_duration, to_text

TOUR_RATE = 40.0
TOUR_SECONDS = 5.0


def _headers(values: Sequence[str] | None) -> dict[str, str]:
    headers = {}
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise LabError(f"header {value!r} is not 'Name: value'")
        headers[name.strip()] = content.strip()
    return headers


def _print_table(frame: pd.DataFrame) -> None:
    """Print a Lab table for people (meshkit.tables): durations, counts and floats as a person reads them."""
    print(to_text(frame))


def _lab(args: argparse.Namespace, status: StatusLine | None = None) -> Lab:
    return Lab(home=args.home, namespace=args.namespace, progress=status or (lambda _t: None))


def cmd_up(args: argparse.Namespace) -> None:
    status = StatusLine()
    lab = Lab(home=args.home, namespace=args.namespace, progress=status, otlp_endpoint=args.otlp_endpoint)
    lab.up(control_port=args.control_port)
    status.done()
    print(f"lab is up (home: {lab.state_dir})")
    _print_table(lab.workloads())


def cmd_status(args: argparse.Namespace) -> None:
    lab = _lab(args)
    if not lab.running():
        print("no lab is running (start one with `meshkit up`)")
        sys.exit(3)
    health = lab.health()
    print(f"control plane: up, config version {health.get('version')}")
    print("\nworkloads:")
    _print_table(lab.workloads())
    print("\nservices (open a URL in a browser or with curl on this machine: a client outside the mesh):")
    _print_table(lab.services()[["namespace", "service", "versions", "endpoints", "url"]])
    with contextlib.suppress(UnknownWorkload):
        print(f"\ningress gateway (outside the mesh, through the Gateways you apply): {lab.ingress_url()}")
    print("\nsidecars:")
    _print_table(lab.proxy_status())
    resources = lab.resources(sample=args.sample)
    print(f"\nresources (CPU: % of one core over {human_duration(args.sample)}; memory: resident, MiB):")
    _print_table(resources)
    if not resources.empty:
        print("\nby role:")
        _print_table(_role_totals(resources))


def _role_totals(resources: pd.DataFrame) -> pd.DataFrame:
    """lab.resources() summed per role: what the mesh (control plane and sidecars) costs next to the apps."""
    totals = resources.groupby("role", sort=False).agg(
        processes=("pid", "size"), cpu_percent=("cpu_percent", "sum"), cpu_seconds=("cpu_seconds", "sum"), memory_mb=("memory_mb", "sum")
    )
    return totals.reset_index()


def cmd_deploy(args: argparse.Namespace) -> None:
    status = StatusLine()
    frame = _lab(args, status).deploy(args.app, namespace=args.namespace, inject=args.inject)
    status.done()
    _print_table(frame)


def cmd_ingress(args: argparse.Namespace) -> None:
    print(_lab(args).ingress_url())


def cmd_inject(args: argparse.Namespace, enabled: bool = True) -> None:
    status = StatusLine()
    lab = _lab(args, status)
    frame = lab.inject(args.target) if enabled else lab.uninject(args.target)
    status.done()
    _print_table(frame)


def cmd_call(args: argparse.Namespace) -> None:
    result = _lab(args).call(args.service, args.path, method=args.method, headers=_headers(args.header), source=args.source)
    if result.error:
        raise LabError(f"request failed: {result.error}")
    extra = "".join(f" {k}={v}" for k, v in (("flags", result.flags), ("version", result.version)) if v)
    print(f"{result.status} in {result.elapsed_ms:.1f} ms{extra}")
    print(result.text)


def cmd_load(args: argparse.Namespace) -> None:
    status = StatusLine()

    def show(done: int, total: int) -> None:
        status(f"load: {done}/{total} requests")

    frame = _lab(args).load(
        args.service,
        args.path,
        rate=args.rate,
        duration=args.duration,
        requests=args.requests,
        headers=_headers(args.header),
        source=args.source,
        progress=show,
    )
    status.done()
    _print_table(pd.DataFrame([summary(frame)]))


def cmd_down(args: argparse.Namespace) -> None:
    _lab(args).down()
    print("lab is down")


def cmd_apply(args: argparse.Namespace) -> None:
    source = sys.stdin.read() if args.filename == "-" else Path(args.filename)
    if isinstance(source, Path) and not source.is_file():
        raise LabError(f"no such file: {args.filename}")
    frame = _lab(args, StatusLine()).apply(source)
    for row in frame.itertuples():
        print(f"{row.kind.lower()}/{row.name} {'configured' if row.changed else 'unchanged'}")
    print(f"config version {frame.attrs['version']}, ACKed by every sidecar in {frame.attrs['ack_ms']:.0f} ms")


def cmd_get(args: argparse.Namespace) -> None:
    lab = _lab(args)
    if args.name:
        print(yaml.safe_dump(lab.get(args.kind, args.name, args.namespace), sort_keys=False), end="")
    else:
        _print_table(lab.get(args.kind))


def cmd_delete(args: argparse.Namespace) -> None:
    version = _lab(args).delete(args.kind, args.name)
    print(f"{args.kind.lower()}/{args.name} deleted (config version {version})")


def cmd_export(args: argparse.Namespace) -> None:
    text = _lab(args).export_istio(args.output)
    if args.output is None:
        print(text, end="")
    else:
        print(f"wrote {args.output}")


def cmd_tour(args: argparse.Namespace) -> None:
    """The learner's loop in a terminal: measure, inject, measure again."""
    status = StatusLine()
    lab = _lab(args, status).up()
    if not (lab.workloads()["app"] == "bookinfo").any():
        lab.deploy("bookinfo")
    lab.uninject(args.namespace)
    rows = []
    for phase in ("without sidecars", "with sidecars"):
        if phase == "with sidecars":
            lab.inject(args.namespace)
        status(f"{phase}: warming up")
        lab.load("productpage", "/productpage", rate=20, requests=20)

        def show(done: int, total: int, phase: str = phase) -> None:
            status(f"{phase}: {done}/{total} requests to productpage")

        frame = lab.load("productpage", "/productpage", rate=args.rate, duration=args.duration, progress=show)
        rows.append({"phase": phase, **summary(frame)})
    status.done()
    table = pd.DataFrame(rows).set_index("phase")
    print(f"\nproductpage at {args.rate:g} requests/s for {args.duration:g} s, open loop, latency from intended send time:\n")
    print(table[["count", "success_rate", "p50_ms", "p90_ms", "p99_ms"]].round(2).to_string())
    before, after = rows
    print(
        "\nadded by the sidecars (4 hops of sidecar pairs on the productpage path): "
        + ", ".join(f"{q} {after[f'{q}_ms'] - before[f'{q}_ms']:+.2f} ms" for q in ("p50", "p90", "p99"))
    )
    edges = lab.edges()
    print("\nedges the sidecars observed, and how each is secured:\n")
    if edges.empty:
        print("(no telemetry yet)")
    else:
        edges = edges.assign(security=edges["security"].map(lambda s: "mTLS" if s == "mutual_tls" else "plaintext" if s == "none" else s))
        print(edges[["source", "destination", "requests", "success_rate", "security"]].to_string(index=False))
    print("\nnext: `meshkit stat` (golden signals per workload), `meshkit trace` (recent traces), "
          "`meshkit status`, `meshkit down` when done.")


def _fmt_stat(frame: pd.DataFrame) -> pd.DataFrame:
    """Linkerd's stat columns and number formats: SUCCESS as a percentage, latency in ms, "-" when unknown."""
    def pct(v: float) -> str:
        return "-" if pd.isna(v) else f"{v * 100:.2f}%"

    def num(v: float, unit: str = "") -> str:
        return "-" if pd.isna(v) else f"{v:.1f}{unit}"

    return pd.DataFrame({
        "NAME": frame["workload"], "MESHED": frame["meshed"], "SUCCESS": frame["success_rate"].map(pct),
        "RPS": frame["rps"].map(lambda v: num(v, "rps")), "LATENCY_P50": frame["p50_ms"].map(lambda v: num(v, "ms")),
        "LATENCY_P95": frame["p95_ms"].map(lambda v: num(v, "ms")), "LATENCY_P99": frame["p99_ms"].map(lambda v: num(v, "ms")),
    })  # fmt: skip


def cmd_certs(args: argparse.Namespace) -> None:
    status = StatusLine()
    lab = _lab(args, status)
    frame = lab.rotate_root() if args.rotate_root else lab.certificates()
    status.done()
    if frame.empty:
        print("(no sidecars, so no workload certificates: inject a workload first)")
        return
    shown = frame[["workload", "instance", "identity", "serial", "not_after", "time_to_renewal", "rotations", "root", "trusted_roots"]]
    _print_table(shown.rename(columns={"time_to_renewal": "renews_in"}))


def cmd_stat(args: argparse.Namespace) -> None:
    frame = _lab(args).stat(args.workload, window=args.window)
    print(f"what each workload served in the last {human_duration(args.window)}, as its sidecar saw it:\n")
    _print_table(_fmt_stat(frame))


def _top_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no requests in the window)"
    shown = pd.DataFrame({
        "SOURCE": frame["source"], "DESTINATION": frame["destination"], "METHOD": frame["method"], "PATH": frame["path"],
        "COUNT": frame["count"], "BEST": frame["best_ms"].map(lambda v: f"{v:.1f}ms"),
        "WORST": frame["worst_ms"].map(lambda v: f"{v:.1f}ms"), "LAST": frame["last_ms"].map(lambda v: f"{v:.1f}ms"),
        "SUCCESS": frame["success_rate"].map(lambda v: f"{v * 100:.1f}%"),
    })  # fmt: skip
    return str(shown.to_string(index=False))


def cmd_top(args: argparse.Namespace) -> None:
    """Refresh the busiest routes every --interval seconds until Ctrl-C or --seconds have passed."""
    lab = _lab(args)
    tty = sys.stdout.isatty()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        while True:
            table = _top_table(lab.top(window=args.window, limit=args.limit))
            stamp = time.strftime("%H:%M:%S")
            header = f"meshkit top  {stamp}  (last {args.window:g} s; Ctrl-C to quit)"
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J" + header + "\n\n" + table + "\n")
            else:
                sys.stdout.write(header + "\n" + table + "\n\n")
            sys.stdout.flush()
            if deadline is not None and time.monotonic() + args.interval > deadline:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        print()


def cmd_logs(args: argparse.Namespace) -> None:
    text = _lab(args).logs(args.workload, sidecar=args.sidecar, tail=args.tail, proxy=args.proxy)
    print(text if text else "(no log lines yet)")


def cmd_trace(args: argparse.Namespace) -> None:
    from meshkit.observe import trace_text

    lab = _lab(args)
    if not args.trace_id:
        frame = lab.traces(window=args.window, limit=args.limit)
        if frame.empty:
            print("(no traces recorded yet: send some traffic through sidecars)")
            return
        frame = frame.assign(time=frame["time"].dt.strftime("%H:%M:%S.%f").str[:-3], duration_ms=frame["duration_ms"].round(2))
        print(frame.to_string(index=False))
        print("\nshow one: meshkit trace <trace_id>")
        return
    tree = lab.trace(args.trace_id)
    print(f"trace {args.trace_id}: {len(tree)} spans, {tree.attrs['duration_ms']:.2f} ms in all\n")
    print(trace_text(tree))


def cmd_quiz(args: argparse.Namespace) -> None:
    from meshkit.quiz.terminal import progress_table, run_quiz

    if not args.notebook:
        print(progress_table())
        print("\nstart one: meshkit quiz 04")
        return
    run_quiz(args.notebook, _lab(args), tasks=not args.no_tasks)


def cmd_progress(args: argparse.Namespace) -> None:
    from meshkit.quiz.terminal import export_progress, progress_table

    if args.export:
        rows = export_progress(Path(args.export), all_learners=args.all)
        print(f"wrote {rows} attempts to {args.export}")
        return
    print(progress_table())


def cmd_journal(args: argparse.Namespace) -> None:
    frame = _lab(args).journal(all_sessions=args.all)
    for problem in frame.attrs.get("problems", []):
        print(f"meshkit: {problem}", file=sys.stderr)
    if args.last:
        frame = frame.tail(args.last)
    if frame.empty:
        print("the journal is empty: nothing was done to this lab yet")
        return
    shown = frame.assign(time=frame["time"].dt.strftime("%H:%M:%S"))
    _print_table(shown.drop(columns=["cell"]))


def cmd_export_script(args: argparse.Namespace) -> None:
    lab = _lab(args)
    if args.notebook:
        from meshkit import export_notebook

        if args.since or args.checkpoint or args.last:
            raise LabError("--since, --checkpoint and --last slice a lab's journal; a notebook's export takes the whole notebook")
        path = export_notebook.write_notebook_script(Path(args.notebook), lab._journal, Path(args.output))
    else:
        path = lab.export_script(args.output, since=args.since, checkpoint=args.checkpoint, last=args.last)
    print(f"wrote {path}: run it with `python {path}`")


def cmd_catch_up(args: argparse.Namespace) -> None:
    status = StatusLine()
    changes = _lab(args, status).catch_up(args.notebook)
    status.done()
    print(changes)


def cmd_checkpoint(args: argparse.Namespace) -> None:
    path = _lab(args).checkpoint(args.name)
    print(f"saved checkpoint {args.name} ({path.name} in {path.parent})")


def cmd_restore(args: argparse.Namespace) -> None:
    status = StatusLine()
    changes = _lab(args, status).restore(args.name)
    status.done()
    print(changes)


def cmd_checkpoints(args: argparse.Namespace) -> None:
    frame = _lab(args).checkpoints()
    for problem in frame.attrs.get("problems", []):
        print(f"meshkit: {problem}", file=sys.stderr)
    if frame.empty:
        print("no checkpoints yet: save one with `meshkit checkpoint NAME`")
        return
    _print_table(frame)


def cmd_diff(args: argparse.Namespace) -> None:
    print(_lab(args).diff(args.name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshkit", description="An interactive service-mesh lab.")
    parser.add_argument("--home", default=None, help="lab state directory (default: $MESHKIT_HOME or ~/.meshkit)")
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="start the lab (or reattach to it)")
    p.add_argument("--control-port", type=int, default=None, help="loopback port for the control plane")
    p.add_argument("--otlp-endpoint", default=None, metavar="URL",
                   help="also send every span to this OpenTelemetry collector (OTLP/HTTP, e.g. http://127.0.0.1:4318)")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("status", help="workloads, service URLs, sidecars, config state and resource use")
    p.add_argument("--sample", type=float, default=0.5, help="seconds over which CPU use is measured (default 0.5)")
    p.set_defaults(func=cmd_status)
    sub.add_parser("down", help="stop the lab and forget its state").set_defaults(func=cmd_down)

    p = sub.add_parser("certs", help="every sidecar's certificate: identity, serial, expiry, root")
    p.add_argument("--rotate-root", action="store_true",
                   help="first replace the mesh's root CA, with traffic flowing (docs/security.md)")
    p.set_defaults(func=cmd_certs)

    p = sub.add_parser("ingress", help="the ingress gateway's URL (open it + /productpage in a browser)")
    p.set_defaults(func=cmd_ingress)

    p = sub.add_parser("deploy", help="deploy a demo app (bookinfo, shop)")
    p.add_argument("app", nargs="?", default="bookinfo")
    p.add_argument("--inject", action="store_true", help="start the workloads with sidecars")
    p.set_defaults(func=cmd_deploy)

    for name, enabled in (("inject", True), ("uninject", False)):
        p = sub.add_parser(name, help=f"restart a workload or namespace {'with' if enabled else 'without'} sidecars")
        p.add_argument("target", nargs="?", default=None, help="workload, namespace, or namespace/workload")
        p.set_defaults(func=lambda a, e=enabled: cmd_inject(a, e))

    for name, helptext in (("call", "send one request from inside the mesh"), ("load", "open-loop load, summary table")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("service")
        p.add_argument("path", nargs="?", default="/")
        p.add_argument("-H", "--header", action="append", help="'Name: value' (repeatable)")
        p.add_argument("--from", dest="source", default="curl", help="source workload (default: curl)")
        if name == "call":
            p.add_argument("-X", "--method", default="GET")
            p.set_defaults(func=cmd_call)
        else:
            p.add_argument("--rate", type=float, default=20.0, help="requests per second")
            p.add_argument("--duration", type=float, default=5.0, help="seconds")
            p.add_argument("--requests", type=int, default=None, help="exact number of requests")
            p.set_defaults(func=cmd_load)

    p = sub.add_parser("apply", help="apply Istio-shaped config from a YAML file")
    p.add_argument("-f", "--filename", required=True, help="YAML file, or - for standard input")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("get", help="list config, or show one resource as YAML")
    p.add_argument("kind", nargs="?", default=None, help="VirtualService, DestinationRule, ... (or vs, dr, pa, ap)")
    p.add_argument("name", nargs="?", default=None)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("delete", help="delete one resource")
    p.add_argument("kind")
    p.add_argument("name")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("export", help="write the lab's config as YAML for a real Istio")
    p.add_argument("--istio", action="store_true", required=True, help="Istio's apiVersions (the only format)")
    p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("stat", help="golden signals per workload (linkerd stat): success, rps, latency")
    p.add_argument("workload", nargs="?", default=None)
    p.add_argument("--window", type=float, default=60.0, help="seconds to look back (default 60)")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("top", help="the busiest routes, refreshed live (linkerd top)")
    p.add_argument("--window", type=float, default=10.0, help="seconds to look back (default 10)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--limit", type=int, default=20, help="rows to show")
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("logs", help="a workload's log, or its sidecar's access log")
    p.add_argument("workload")
    p.add_argument("--sidecar", action="store_true", help="the sidecar's access log (JSON, one line per request)")
    p.add_argument("--proxy", action="store_true", help="the sidecar process's own log")
    p.add_argument("--tail", type=int, default=100, help="last N lines (0: all)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("trace", help="one request's spans as a tree, or recent traces without an id")
    p.add_argument("trace_id", nargs="?", default=None)
    p.add_argument("--window", type=float, default=None, help="traces of the last N seconds only")
    p.add_argument("--limit", type=int, default=20, help="traces to list")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("tour", help="the whole loop: bookinfo latency without and with sidecars")
    p.add_argument("--rate", type=float, default=TOUR_RATE)
    p.add_argument("--duration", type=float, default=TOUR_SECONDS)
    p.set_defaults(func=cmd_tour)
    p = sub.add_parser("quiz", help="a notebook's quiz in the terminal, with its live tasks against the running lab")
    p.add_argument("notebook", nargs="?", help="the notebook's number, such as 04 (none: list the quizzes and your progress)")
    p.add_argument("--no-tasks", action="store_true", help="questions only, no live tasks")
    p.set_defaults(func=cmd_quiz)
    p = sub.add_parser("progress", help="your quiz progress per notebook; --export writes every attempt as CSV")
    p.add_argument("--export", metavar="FILE", help="write every attempt to FILE (CSV), for an instructor")
    p.add_argument("--all", action="store_true", help="with --export: every learner in the progress file, not only you")
    p.set_defaults(func=cmd_progress)
    p = sub.add_parser("journal", help="what was done to this lab, one line per action (deploy, apply, load, ...)")
    p.add_argument("--all", action="store_true", help="every session this lab home remembers, not only the current one")
    p.add_argument("--last", type=int, default=None, metavar="N", help="only the last N actions")
    p.set_defaults(func=cmd_journal)
    p = sub.add_parser("export-script", help="write the experiment (or a notebook with your widget moves) as a Python script")
    p.add_argument("notebook", nargs="?", help="a notebook (.ipynb) to export with your moves put in; none: the lab's journal")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the script to write, such as canary.py")
    p.add_argument("--since", default=None, metavar="TIME", help="only actions from TIME on ('20:05', '2026-12-04 20:05')")
    p.add_argument("--checkpoint", default=None, metavar="NAME", help="only actions after the checkpoint NAME")
    p.add_argument("--last", type=int, default=None, metavar="N", help="only the last N actions")
    p.set_defaults(func=cmd_export_script)
    p = sub.add_parser("catch-up", help="put the lab in the state a notebook starts from (any lab: fresh, another notebook's, broken)")
    p.add_argument("notebook", help="the notebook's number, such as 07")
    p.set_defaults(func=cmd_catch_up)
    p = sub.add_parser("checkpoint", help="save the lab's apps, sidecars, config and certificate lifetime under a name")
    p.add_argument("name", help="letters, digits, '-', '_' and '.', such as before-strict")
    p.set_defaults(func=cmd_checkpoint)
    p = sub.add_parser("restore", help="bring the lab back to a checkpoint exactly, and say what changed")
    p.add_argument("name")
    p.set_defaults(func=cmd_restore)
    sub.add_parser("checkpoints", help="the checkpoints saved in this lab home").set_defaults(func=cmd_checkpoints)
    p = sub.add_parser("diff", help="how the lab differs from a checkpoint, in plain words")
    p.add_argument("name")
    p.set_defaults(func=cmd_diff)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MeshkitError as exc:
        print(f"\nmeshkit: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nmeshkit: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, not a traceback
        if os.environ.get("MESHKIT_DEBUG") == "1":
            traceback.print_exc()
        print(f"\nmeshkit: internal error: {type(exc).__name__}: {exc} (MESHKIT_DEBUG=1 shows the traceback)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
