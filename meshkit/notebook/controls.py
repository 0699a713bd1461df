"""What every config widget shares: a view of the lab's config that applies through the lab.

A config widget shows what the lab has now, lets the learner change its own
fields, and applies the edited resource (meshkit.notebook.istio builds it)
with `lab.apply`, the same validated, all-or-nothing path YAML takes. When
the lab refuses, the ConfigError's message (kind, name, field path, reason)
is shown under the widget and nothing was applied; when it accepts, the
widget shows the config version and how long the slowest sidecar took to
ACK it, so the learner sees the push happen.

Being a view. The lab's config also changes from elsewhere: another
widget, a lab.apply in another cell, the CLI. Every change bumps the lab's
config version (lab.health()["version"]), so a widget remembers the version
its controls were read at (`synced_version`) and reads the lab again
(`refresh`) when it moved:

- before it applies (`sync`), so what it writes starts from the lab as it
  is, not as it was when the cell ran;
- on a light timer while it is displayed (ConfigWatcher), so the screen
  follows the lab without the learner asking.

A refresh never takes away what the learner is typing: a control whose
value differs from what was last read from the lab holds an edit not yet
applied, and keeps it (meshkit.notebook.istio.merge_edits); the others take
the lab's values. Choices that say what the form is about (which rule,
which scope, which policy) stay as the learner left them while the lab
still has them.

Applying runs in the caller's thread (the kernel's, for a widget event): a
push is short (the lab returns once every sidecar ACKed, tens of ms), and
doing it in order keeps "move, then read lab.get" true for the learner and
for tests. The timer runs on the kernel's own event loop for the same
reason: its refreshes happen between cells and widget events, never during
one, so there is nothing to lock. Load and chart refresh, which are long,
run on the loop thread (meshkit.notebook.live).
"""

from __future__ import annotations

import asyncio
import html
import traceback
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
from traitlets import Dict, Float, Int, List, Unicode

from meshkit import journal
from meshkit.errors import MeshkitError
from meshkit.lab import Lab
from meshkit.notebook.istio import Manifest, merge_edits

OK_STYLE = "color: #2ca02c"
ERROR_STYLE = "color: #d62728; white-space: pre-wrap"
WATCH_INTERVAL_S = 1.0
"""How often a displayed widget asks whether the lab's config changed: one
loopback request per lab per second, however many widgets are shown."""


def lab_resources(lab: Lab, kind: str, namespace: str | None = None) -> list[Manifest]:
    """Every stored resource of a kind, as the dicts lab.get gives for one."""
    table = lab.get(kind, namespace=namespace)
    return [lab.get(kind, name, ns) for ns, name in zip(table["namespace"], table["name"], strict=True)]


def lab_version(lab: Lab) -> int:
    """The lab's config version: it moves with every apply or delete, wherever it came from."""
    return int(lab.health()["version"])


def applied_message(resource: Mapping[str, Any], version: int, ack_ms: float, warnings: Sequence[str]) -> str:
    """The status line after an apply: which resource, which version, how fast the sidecars took it."""
    meta = resource.get("metadata", {})
    text = (
        f"applied {resource.get('kind')} {meta.get('namespace', 'default')}/{meta.get('name')} "
        f"as config version {version}; the slowest sidecar ACKed it in {ack_ms:.0f} ms"
    )
    return "\n".join([text, *(f"warning: {w}" for w in warnings)])


def option_values(options: Sequence[Any]) -> list[Any]:
    """The values of a selection widget's options ((label, value) pairs or plain values)."""
    return [o[1] if isinstance(o, tuple) else o for o in options]


class ConfigWatcher:
    """Refreshes displayed config widgets when their lab's config version moves.

    Widgets join when the frontend reports a view of them (`_view_count`);
    each tick asks every lab with a displayed widget for its version once and
    refreshes the widgets that are behind. Ticks run on the event loop that
    was running when a widget joined, the kernel's, so a refresh never runs
    in the middle of a cell or a widget event. Without a running loop (a
    script, a headless run) nothing is scheduled: nobody is looking, and a
    widget still syncs before it applies. Ticking stops once no widget is
    displayed and starts again with the next one shown.
    """

    def __init__(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.controls: weakref.WeakSet[ConfigControl] = weakref.WeakSet()
        self.last_error = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def watch(self, control: ConfigControl) -> None:
        """Keep `control` current while it is displayed."""
        self.controls.add(control)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is not None and self._loop is loop:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._timer = loop.call_later(self.interval_s, self.tick)

    def tick(self) -> None:
        """Refresh each displayed widget whose lab moved on; schedule the next tick while any is displayed."""
        self._timer = None
        shown = [c for c in list(self.controls) if c.displayed]
        if not shown:
            return
        versions: dict[int, int | None] = {}
        for control in shown:
            key = id(control.lab)
            if key not in versions:
                try:
                    versions[key] = lab_version(control.lab)
                except MeshkitError:
                    versions[key] = None  # the lab is down or restarting: keep showing what it had
            version = versions[key]
            if version is None or version == control.synced_version:
                continue
            try:
                control.refresh_at(version)
            except Exception as exc:  # noqa: BLE001 - one widget's failure must not stop the others' refresh
                self.last_error = traceback.format_exc(limit=3)
                control.show_error(f"could not read the lab: {exc}")
        if self._loop is not None and not self._loop.is_closed():
            self._timer = self._loop.call_later(self.interval_s, self.tick)


WATCHER = ConfigWatcher()
"""The one watcher of this kernel: one version check per lab per tick for every widget shown."""


class ConfigControl(widgets.VBox):
    """A titled box of controls with a status line under it, kept true to the lab.

    Subclasses put the controls the lab fills into `form` (name -> widget)
    and implement `reload()`: read the lab and show what it has, through
    `show_values` for form controls. Traits a notebook (or a test) can read
    or observe: `error` (the last refusal's message, "" after a success),
    `version` and `ack_ms` (of the last successful apply), `applied` (the
    resource it applied), `synced_version` (the config version the controls
    show) and `kept` (edits kept over a different lab value at the last refresh).
    """

    error = Unicode("")
    message = Unicode("")
    version = Int(0)
    ack_ms = Float(0.0)
    applied = Dict()
    synced_version = Int(-1)
    kept = List(Unicode())

    def __init__(self, lab: Lab, title: str, controls: Sequence[widgets.Widget], **kwargs: Any) -> None:
        self.lab = lab
        self.title = title
        self.status = widgets.HTML()
        self.form: dict[str, widgets.ValueWidget] = {}
        self._loaded: dict[str, Any] = {}
        self._quiet = 0
        self._problem = ""
        # _view_count 0 asks the frontend to count this widget's views, so the watcher knows when it is shown.
        super().__init__(children=[widgets.HTML(f"<b>{html.escape(title)}</b>"), *controls, self.status],
                         _view_count=0, **kwargs)
        self.observe(self._views_changed, names="_view_count")

    # -- being a view of the lab -------------------------------------------

    @property
    def displayed(self) -> bool:
        """Whether a frontend shows it now (and it was not closed)."""
        return bool(self._view_count) and self.comm is not None

    def reload(self) -> str:
        """Read the lab and show what it has; return a problem to show ("" when there is none)."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Read the lab again and show it, keeping edits the learner has not applied."""
        self.refresh_at(lab_version(self.lab))

    def refresh_at(self, version: int) -> None:
        """refresh() when the caller already asked the lab for its version.

        The version is read before the resources, so a change landing in
        between is seen by the next check rather than missed.
        """
        problem = self.reload()
        self.synced_version = version
        if problem:
            self.show_error(problem)
        elif self._problem and self.error == self._problem:
            self.show_message(f"read the lab at config version {version}")
        elif self.kept:
            self.show_message(f"the lab changed (config version {version}); "
                              f"your edits not applied yet are kept: {', '.join(self.kept)}")
        self._problem = problem

    def sync(self) -> bool:
        """Refresh when the lab's config changed since the controls were read; False (shown) when the lab does not answer."""
        try:
            version = lab_version(self.lab)
            if version != self.synced_version:
                self.refresh_at(version)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        return True

    def show_values(self, incoming: Mapping[str, Any]) -> None:
        """Show the lab's values in the form, except in controls holding an edit not applied yet."""
        shown = {name: self.form[name].value for name in incoming}
        values, kept = merge_edits(self._loaded, shown, incoming)
        with self.quietly():
            for name, value in values.items():
                if self.form[name].value != value:
                    self.form[name].value = value
        self._loaded.update(incoming)
        self.kept = kept

    def set_choices(self, control: widgets.Dropdown | widgets.ToggleButtons, options: Sequence[Any], fallback: Any) -> None:
        """Offer `options`, keeping the chosen one while it is offered, else choosing `fallback`.

        ipywidgets selects the first option whenever options change; a choice
        the lab still has must survive a refresh.
        """
        current = control.value
        with self.quietly():
            if list(control.options) != list(options):
                control.options = options
            values = option_values(options)
            control.value = current if current in values else fallback if fallback in values else None

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Set controls from the lab without their observers taking it for the learner's move."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @property
    def quiet(self) -> bool:
        return self._quiet > 0

    def _views_changed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            WATCHER.watch(self)
            self.sync()

    # -- applying ------------------------------------------------------------

    @property
    def journal_name(self) -> str:
        """How the journal and an exported script name this widget: its class and its title."""
        return f"{type(self).__name__} ({self.title})"

    def apply(self, resource: Manifest) -> bool:
        """Apply one resource; on refusal show why and return False (nothing changed)."""
        try:
            with journal.acting_widget(self.journal_name):
                frame = self.lab.apply(resource)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        self.version = int(frame.attrs.get("version", 0))
        self.ack_ms = float(frame.attrs.get("ack_ms", 0.0))
        self.applied = dict(resource)
        self._settled()
        self.show_message(applied_message(resource, self.version, self.ack_ms, frame.attrs.get("warnings", [])))
        return True

    def delete(self, kind: str, name: str, namespace: str) -> bool:
        """Remove one resource; a missing one is shown as an error, not raised."""
        try:
            with journal.acting_widget(self.journal_name):
                self.version = self.lab.delete(kind, name, namespace)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        self.applied = {}
        self._settled()
        self.show_message(f"deleted {kind} {namespace}/{name}; config version {self.version}")
        return True

    def _settled(self) -> None:
        """After an apply the form is the lab's: no edit is pending, and the controls show what the lab made of it."""
        self._loaded = {name: control.value for name, control in self.form.items()}
        try:
            self.refresh()
        except MeshkitError:
            self.synced_version = -1  # read again at the next sync

    def show_error(self, text: str) -> None:
        self.error = text
        self.message = ""
        self.status.value = f'<span style="{ERROR_STYLE}">{html.escape(text)}</span>'

    def show_message(self, text: str) -> None:
        self.error = ""
        self.message = text
        self.status.value = f'<span style="{OK_STYLE}; white-space: pre-wrap">{html.escape(text)}</span>'
