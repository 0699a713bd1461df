"""The load generator widget: several open-loop runs at once, each with a progress bar and a stop button.

A run executes on the Lab's loop thread (meshkit.aio.submit), never in the
kernel's thread, so the notebook stays usable while it sends. Its rows go
into a shared Recorder as they come in, which the live charts read.

A chart cannot wait for a whole run to finish, so each run is one run_load
(one open-loop schedule, one connection pool, one concurrency cap) whose
results stream out as they complete (its `on_result` hook) and are handed to
the recorder in batches about twice a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from traitlets import Int, Unicode

from meshkit import aio, journal
from meshkit.errors import MeshkitError
from meshkit.lab import CLIENT, Lab
from meshkit.loadgen import LoadSpec, Result, plan, results_frame, run_load
from meshkit.notebook.controls import ERROR_STYLE
from meshkit.notebook.recorder import Recorder, rows_from_results, wall_offset

FLUSH_S = 0.5
"""Rows reach the charts about this often (and once more at the end)."""


def parse_headers(text: str) -> dict[str, str]:
    """'Name: value' lines (blank lines skipped) as a dict; ValueError names the bad line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"headers, line {number}: expected 'Name: value', got {line.strip()!r}")
        headers[name.strip()] = value.strip()
    return headers


def load_spec(
    lab: Lab,
    service: str,
    path: str,
    *,
    rate: float,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
    source: str = CLIENT.name,
    timeout_s: float = 10.0,
) -> LoadSpec:
    """The LoadSpec lab.load would send for these arguments (same source, same way out of it)."""
    return lab.load_spec(service, path, rate=rate, duration=duration_s, headers=headers, source=source, timeout=timeout_s)


async def run_streaming(
    spec: LoadSpec,
    stop: asyncio.Event,
    on_rows: Callable[[list[Result]], None],
    flush_s: float = FLUSH_S,
) -> None:
    """Run `spec` to the end (or until `stop`), handing finished rows to
    `on_rows` about every `flush_s` seconds and once at the end.

    Runs on the loop it is awaited on (the Lab's loop thread).
    """
    buffer: list[Result] = []
    task = asyncio.ensure_future(run_load(spec, stop=stop, on_result=buffer.append))
    while not task.done():
        await asyncio.wait([task], timeout=flush_s)
        if buffer:
            batch = buffer[:]
            buffer.clear()
            on_rows(batch)
    task.result()


class LoadRun(widgets.HBox):
    """One run: what it sends, a progress bar, a stop button, and its state.

    `state` is "running", then "done", "stopped" or "failed" (with `error`);
    `completed` counts rows recorded of `total`. `wait()` blocks until the
    run ends (for scripts and headless notebooks).
    """

    state = Unicode("running")
    error = Unicode("")
    completed = Int(0)
    total = Int(0)

    def __init__(self, spec: LoadSpec, recorder: Recorder, target: str, on_end: Callable[[LoadRun], None] | None = None,
                 journal_args: Mapping[str, Any] | None = None, journal_version: int | None = None) -> None:
        self.spec = spec
        self.journal_args = dict(journal_args or {})
        """The lab.load arguments this run is journalled as (the version: the config it ran against)."""
        self.journal_version = journal_version
        self.recorder = recorder
        self.target = target
        self.results: list[Result] = []
        self.run_id = recorder.new_run()
        self.total = plan(spec).total
        self._on_end = on_end
        self._offset = wall_offset()
        self._stop = asyncio.Event()
        self._finished = threading.Event()
        self.bar = widgets.IntProgress(value=0, min=0, max=self.total, bar_style="info")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", layout=widgets.Layout(width="80px"))
        self.stop_button.on_click(lambda _: self.stop())
        self.label = widgets.Label(f"#{self.run_id} {target} {spec.rate:g}/s, {self.total} requests")
        super().__init__(children=[self.label, self.bar, self.stop_button],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.future: concurrent.futures.Future[None] = aio.submit(run_streaming(spec, self._stop, self._rows))
        self.future.add_done_callback(self._ended)

    def _rows(self, results: list[Result]) -> None:
        self.results += results
        rows = rows_from_results(results, target=self.target, run=self.run_id, offset=self._offset)
        self.recorder.add(rows)
        self.completed += len(rows)
        self.bar.value = min(self.completed, self.total)

    def _ended(self, future: concurrent.futures.Future[None]) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is not None:
            self.error = f"{type(error).__name__}: {error}"
            self.state = "failed"
            self.bar.bar_style = "danger"
        else:
            self.state = "stopped" if self._stop.is_set() else "done"
            self.bar.bar_style = "warning" if self._stop.is_set() else "success"
        self.stop_button.disabled = True
        self.label.value += f": {self.state}" + (f" ({self.error})" if self.error else "")
        try:
            if self._on_end is not None:
                self._on_end(self)
        finally:
            self._finished.set()

    def stop(self) -> None:
        """Stop sending (thread-safe: the event is set on its own loop)."""
        aio.loop().call_soon_threadsafe(self._stop.set)

    def wait(self, timeout: float | None = None) -> LoadRun:
        """Block until the run has ended and its end was reported; returns self."""
        self._finished.wait(timeout)
        return self


class LoadGenerator(widgets.VBox):
    """A form to start load runs (target, path, rate, duration, headers); each run gets its own row.

    Several runs may go at once; all of them add their rows to `recorder`,
    shared with the charts. `active` counts the runs still sending.
    """

    active = Int(0)
    error = Unicode("")

    def __init__(self, lab: Lab, recorder: Recorder | None = None, service: str | None = None, path: str = "/",
                 rate: float = 20.0, duration_s: float = 10.0, source: str = CLIENT.name) -> None:
        self.lab = lab
        self.recorder = recorder if recorder is not None else Recorder()
        self.source = source
        self.runs: list[LoadRun] = []
        self._listeners: list[Callable[[LoadRun], None]] = []
        services = sorted(set(lab.services()["service"]) - {CLIENT.service})
        style = {"description_width": "90px"}
        self.service = widgets.Dropdown(options=services, value=service if service in services else (services or [None])[0],
                                        description="target", style=style)
        self.path = widgets.Text(value=path, description="path", style=style)
        self.rate = widgets.BoundedFloatText(value=rate, min=0.1, max=5000.0, description="rate /s", style=style)
        self.duration = widgets.BoundedFloatText(value=duration_s, min=0.1, max=3600.0, description="duration s",
                                                 style=style)
        self.headers = widgets.Textarea(value="", placeholder="end-user: jason", description="headers", style=style,
                                        layout=widgets.Layout(height="48px"))
        self.start_button = widgets.Button(description="Start load", button_style="success", icon="play")
        self.start_button.on_click(lambda _: self.start())
        self.status = widgets.HTML()
        self.run_box = widgets.VBox()
        # The form's two columns wrap one under the other when the notebook is narrow.
        form = widgets.HBox([widgets.VBox([self.service, self.path, self.rate]),
                             widgets.VBox([self.duration, self.headers, self.start_button])],
                            layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__(children=[widgets.HTML("<b>Load generator</b>"), form, self.status, self.run_box])

    def on_run(self, listener: Callable[[LoadRun], None]) -> None:
        """Call `listener(run)` when a run starts and again when it ends (from the loop thread)."""
        self._listeners.append(listener)

    def start(self, **overrides: Any) -> LoadRun | None:
        """Start a run with the form's values (or keyword overrides: service, path, rate, duration_s, headers).

        A bad value is shown next to the form and returns None.
        """
        values = {"service": self.service.value, "path": self.path.value, "rate": self.rate.value,
                  "duration_s": self.duration.value, "headers": self.headers.value, **overrides}
        try:
            headers = values["headers"] if isinstance(values["headers"], Mapping) else parse_headers(values["headers"])
            spec = load_spec(self.lab, str(values["service"]), str(values["path"]), rate=float(values["rate"]),
                             duration_s=float(values["duration_s"]), headers=headers, source=self.source)
            plan(spec)
        except (MeshkitError, ValueError) as exc:
            self.error = str(exc)
            self.status.value = f'<span style="{ERROR_STYLE}">{html.escape(str(exc))}</span>'
            return None
        self.error = ""
        self.status.value = ""
        self.active += 1
        args = {"service": str(values["service"]), "path": str(values["path"]), "rate": float(values["rate"]),
                "duration": float(values["duration_s"]), "headers": dict(headers), "source": self.source}
        run = LoadRun(spec, self.recorder, str(values["service"]), on_end=self._ended,
                      journal_args=args, journal_version=self.lab._config_version())
        self.runs.append(run)
        self.run_box.children = [*self.run_box.children, run]
        for listener in self._listeners:
            listener(run)
        return run

    def _ended(self, run: LoadRun) -> None:
        self.active -= 1
        self._journal(run)
        for listener in self._listeners:
            listener(run)

    def _journal(self, run: LoadRun) -> None:
        """Journal the run as the load it was: a stopped run as the requests it sent."""
        summary = journal.load_summary(results_frame(run.results))
        args = dict(run.journal_args)
        if run.state == "stopped":
            args.update(duration=None, requests=summary["count"])
        self.lab._journal_mark("load", args=args, summary=summary, version=run.journal_version,
                               widget="LoadGenerator", state=run.state,
                               **({"ok": False, "error": run.error} if run.state == "failed" else {}))

    def stop_all(self) -> None:
        for run in self.runs:
            if run.state == "running":
                run.stop()

    def wait(self, timeout: float | None = None) -> Sequence[LoadRun]:
        """Block until every run has ended."""
        for run in list(self.runs):
            run.wait(timeout)
        return self.runs
