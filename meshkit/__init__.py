"""meshkit: an interactive service-mesh lab for Jupyter.

    from meshkit import Lab
    lab = Lab().up()

`Lab` is imported on first use: the sidecar, control plane and demo apps are
separate processes that import parts of this package, and must not pay for
pandas and plotly at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Lab", "__version__"]

if TYPE_CHECKING:
    from meshkit.lab import Lab


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from meshkit.lab import Lab

        return Lab
    raise AttributeError(f"module 'meshkit' has no attribute {name!r}")
