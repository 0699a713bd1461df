"""What each sidecar reported, and how long each change took to reach it.

A sidecar ACKs a version once; after a control plane restart it just goes on
polling with the version it has. So each node's report (acked, nacked,
reason, last seen) is saved beside the store, in its own file (a NACK or ACK
never touches the store), and read back on start: a restarted control plane
still knows which sidecars run which version. The push timing history is
kept in memory only. Times are passed in by the caller (wall clock for
display, monotonic for durations), so these classes are deterministic under
test.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CONNECTED_WINDOW_S = 40.0
HISTORY_VERSIONS = 500


@dataclass
class NodeStatus:
    """One sidecar as the control plane last saw it."""

    acked: int = 0
    nacked: int | None = None
    reason: str | None = None
    last_seen: float | None = None
    open_polls: int = 0

    def connected(self, now: float) -> bool:
        """A sidecar with a long poll open, or seen recently enough to be between polls."""
        return self.open_polls > 0 or (self.last_seen is not None and now - self.last_seen <= CONNECTED_WINDOW_S)


@dataclass
class Push:
    """One committed version: when it was committed and when each sidecar took it."""

    version: int
    at: float
    committed_mono: float
    acks: dict[str, float] = field(default_factory=dict)
    nacks: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "at": self.at, "acks": dict(self.acks), "nacks": dict(self.nacks)}


class AckBook:
    """Per-node status and a bounded per-version history of ACK times."""

    def __init__(self, history: int = HISTORY_VERSIONS) -> None:
        self.nodes: dict[str, NodeStatus] = {}
        self.history: OrderedDict[int, Push] = OrderedDict()
        self.history_limit = history

    def reports_to_json(self) -> dict[str, Any]:
        """What survives a restart: each node's last report, not its open polls."""
        return {
            node: {"acked": s.acked, "nacked": s.nacked, "reason": s.reason, "last_seen": s.last_seen}
            for node, s in sorted(self.nodes.items())
        }

    def load_reports(self, document: Any, version: int) -> None:
        """Take back reports saved by `reports_to_json`.

        Entries of the wrong shape are skipped, and so are reports of versions
        newer than the store's `version`: they belong to a store that was
        since removed, not to this one.
        """
        if not isinstance(document, dict):
            return
        for node, saved in document.items():
            try:
                status = NodeStatus(
                    acked=int(saved["acked"]),
                    nacked=None if saved["nacked"] is None else int(saved["nacked"]),
                    reason=None if saved["reason"] is None else str(saved["reason"]),
                    last_seen=None if saved["last_seen"] is None else float(saved["last_seen"]),
                )
            except (KeyError, TypeError, ValueError):
                continue
            if status.acked <= version and (status.nacked or 0) <= version:
                self.nodes[str(node)] = status

    def node(self, node: str) -> NodeStatus:
        return self.nodes.setdefault(node, NodeStatus())

    def forget(self, node: str) -> None:
        """Drop a node that was removed from the registry."""
        self.nodes.pop(node, None)

    def seen(self, node: str, now: float) -> None:
        self.node(node).last_seen = now

    def poll_opened(self, node: str, now: float) -> None:
        status = self.node(node)
        status.open_polls += 1
        status.last_seen = now

    def poll_closed(self, node: str, now: float) -> None:
        status = self.node(node)
        status.open_polls = max(0, status.open_polls - 1)
        status.last_seen = now

    def committed(self, version: int, at: float, mono: float) -> None:
        """Open a history entry for a new version, dropping the oldest beyond the limit."""
        self.history[version] = Push(version, at, mono)
        while len(self.history) > self.history_limit:
            self.history.popitem(last=False)

    def ack(self, node: str, version: int, now: float, mono: float) -> None:
        """Record that `node` runs `version`.

        The ACK also covers every version since the node's previous ACK, since
        a coalesced push delivers them together; a node's first ACK counts for
        its own version only, not for changes made before the node existed.
        """
        status = self.node(node)
        previous = status.acked if status.acked else version - 1
        status.acked = version
        status.last_seen = now
        if status.nacked is not None and status.nacked <= version:
            status.nacked = None
            status.reason = None
        for push in self.history.values():
            if previous < push.version <= version and node not in push.acks:
                push.acks[node] = round((mono - push.committed_mono) * 1000.0, 3)

    def nack(self, node: str, version: int, reason: str, now: float) -> None:
        """Record that `node` rejected `version` and keeps running what it had."""
        status = self.node(node)
        status.nacked = version
        status.reason = reason
        status.last_seen = now
        if version in self.history:
            self.history[version].nacks[node] = reason

    def status(self, version: int, nodes: Iterable[str], now: float) -> dict[str, Any]:
        """`GET /v1/status` for the given node ids."""
        out: dict[str, Any] = {}
        for node in sorted(nodes):
            status = self.nodes.get(node, NodeStatus())
            out[node] = {
                "acked": status.acked,
                "nacked": status.nacked,
                "reason": status.reason,
                "connected": status.connected(now),
                "last_seen": status.last_seen,
            }
        return {"version": version, "nodes": out}

    def pushes(self, limit: int, since: int = 0) -> list[dict[str, Any]]:
        """The last `limit` history entries with version >= `since`, oldest first."""
        chosen = [push for push in self.history.values() if push.version >= since]
        return [push.to_json() for push in chosen[-limit:]]
