"""Live frontend or headless: the rules docs/notebook.md states."""

from __future__ import annotations

from meshkit.notebook.frontend import in_kernel, is_live


def test_the_environment_variable_wins() -> None:
    assert is_live({"MESHKIT_HEADLESS": "1", "JPY_SESSION_NAME": "x.ipynb"}, kernel=True) is False
    assert is_live({"MESHKIT_HEADLESS": "0"}, kernel=False) is True


def test_outside_a_kernel_is_headless() -> None:
    assert is_live({"JPY_SESSION_NAME": "x.ipynb"}, kernel=False) is False
    assert in_kernel() is False and is_live() is False


def test_a_kernel_of_a_jupyter_server_or_vscode_is_live_and_any_other_is_headless() -> None:
    assert is_live({"JPY_SESSION_NAME": "notebooks/04.ipynb"}, kernel=True) is True
    assert is_live({"VSCODE_PID": "123"}, kernel=True) is True
    assert is_live({"JPY_PARENT_PID": "1"}, kernel=True) is False
