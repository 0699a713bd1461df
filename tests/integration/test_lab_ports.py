"""Who holds a port: what the lab's readiness check asks of each process.

A lab takes an instance as ready only when its own processes listen on the
ports it gave them (meshkit.backends.local). With two labs starting at once,
another program can take one of those ports first and answer on it; the
check must not count that answer as ours.
"""

from __future__ import annotations

import socket
from pathlib import Path

from meshkit.backends import processes
from meshkit.ports import free_port


def test_a_process_holds_the_port_it_listens_on_and_not_a_port_another_program_listens_on(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        taken = stranger.getsockname()[1]
        port = free_port()
        record = processes.spawn("http.server", ["--bind", "127.0.0.1", str(port)], tmp_path / "server.log")
        try:
            assert processes.wait_until(lambda: port in processes.listening_ports(record), 20.0), processes.exit_reason(record)
            assert taken not in processes.listening_ports(record)
        finally:
            processes.stop(record)
    assert processes.listening_ports(record) == set()  # gone: it holds nothing
    assert processes.listening_ports(None) == set()
