"""The two ways to install meshkit must install the same things."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def pyproject_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"]


def environment_requirements() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    return [req for req in pip_sections[0] if req != "-e ."]


def test_environment_yml_lists_exactly_the_pyproject_dependencies() -> None:
    assert environment_requirements() == pyproject_requirements()


def test_environment_yml_installs_meshkit_itself_and_the_right_python() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python>=3.11" in env["dependencies"]
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert "-e ." in pip_section


def test_required_stack_is_declared() -> None:
    names = {req.split(">")[0].split("=")[0].split(";")[0].strip().lower() for req in pyproject_requirements()}
    for required in ("jupyterlab", "ipywidgets", "kubernetes", "pandas", "plotly", "httpx", "cryptography"):
        assert required in names


def test_console_script_points_at_the_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["meshkit"] == "meshkit.cli:main"
