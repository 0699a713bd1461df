"""Is someone looking? Live widgets in a notebook frontend, static output otherwise.

A widget only does something when a frontend renders it. Executed headless
(nbclient, nbconvert, papermill, CI) a notebook has a kernel but no frontend:
widgets would be saved as empty placeholders, and a chart that updates itself
later would be saved before it has anything in it. So every helper asks
`is_live()` and, when it is False, displays static figures and text instead.

How it decides, first rule that applies:

1. `MESHKIT_HEADLESS` set in the environment: "1"/"true"/"yes" means headless,
   "0"/"false"/"no" means live. A test harness that executes notebooks sets
   it to be sure (the kernel inherits the harness's environment).
2. Not running inside an IPython kernel (a plain script, pytest, the
   terminal IPython): headless.
3. A kernel started by a Jupyter server (JupyterLab, Notebook 7, Voila): the
   server sets `JPY_SESSION_NAME` in the kernel's environment. VS Code sets
   `VSCODE_PID`. Either means live.
4. Any other kernel, which is what nbclient/nbconvert/papermill start
   directly through jupyter_client: headless.
"""

from __future__ import annotations

import os
import sys
from typing import Any

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def in_kernel() -> bool:
    """True inside an IPython kernel (ipykernel), whatever frontend is attached."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def is_live(environ: dict[str, str] | None = None, kernel: bool | None = None) -> bool:
    """Whether widgets will be rendered by a frontend (the rules in this module's docstring)."""
    env = os.environ if environ is None else environ
    forced = env.get("MESHKIT_HEADLESS", "").strip().lower()
    if forced in TRUE:
        return False
    if forced in FALSE:
        return True
    if not (in_kernel() if kernel is None else kernel):
        return False
    return bool(env.get("JPY_SESSION_NAME") or env.get("VSCODE_PID"))


def show(*objects: Any) -> None:
    """display() in a kernel; nothing elsewhere (a script uses the return values)."""
    if not in_kernel():
        return
    from IPython.display import display

    display(*objects)
