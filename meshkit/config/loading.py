"""Turning what a learner hands over into checked resource models.

`load` takes a file path, YAML text (several documents separated by `---`,
as kubectl reads them), one resource as a dict, or a list of dicts, and
returns the models or raises ConfigError for the first problem. An error
says where: `resources.yaml document 2, line 14` for YAML, `item 3` for a
list, so a learner can find the line.

Duplicate keys in a YAML mapping are refused: PyYAML would keep the last
one silently, so a second `route:` would quietly replace the first, while
kubectl refuses the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Union

import yaml
from pydantic import ValidationError

from meshkit.config.kinds import resource_class
from meshkit.config.problems import Path, Problem, problem_from_validation_error
from meshkit.config.rules import resource_problems
from meshkit.config.schema import Resource
from meshkit.names import type_name
from meshkit.errors import ConfigError

Source = Union[str, "os.PathLike[str]", Mapping[str, Any], Sequence[Mapping[str, Any]]]
TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec")
YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Document:
    """One resource as written, and how to point at its lines."""

    data: Any
    where: str
    node: yaml.Node | None = None

    def locate(self, path: Path) -> str:
        """` (resources.yaml document 2, line 14)`, or '' when nothing is known."""
        if not self.where:
            return ""
        line = _line_of(self.node, path) if self.node is not None else None
        return f" ({self.where}, line {line})" if line else f" ({self.where})"


def load(source: Source) -> list[Resource]:
    """Every resource in `source`, checked; ConfigError for the first problem."""
    resources: list[Resource] = []
    seen: dict[tuple[str, str, str], str] = {}
    for document in _documents(source):
        resource = parse(document.data, document.locate)
        key = (resource.KIND, resource.namespace, resource.name)
        if key in seen:
            raise ConfigError(
                resource.KIND,
                resource.name,
                "metadata.name",
                f"defined twice in namespace {resource.namespace}: {seen[key]} and {document.where}",
            )
        seen[key] = document.where
        resources.append(resource)
    return resources


def parse(obj: Any, locate: Callable[[Path], str] = lambda path: "") -> Resource:
    """One resource from its dict form, checked; ConfigError names the field.

    `locate` turns a field path into a place in the learner's file.
    """
    if not isinstance(obj, dict):
        raise ConfigError("resource", "?", "", f"must be a mapping, got {type_name(obj)}{locate(())}")
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind_label = kind if isinstance(kind, str) and kind else "resource"
    name_label = name if isinstance(name, str) and name else "?"

    def fail(problem: Problem) -> ConfigError:
        return ConfigError(kind_label, name_label, problem.where, problem.reason + locate(problem.path))

    for field in obj:
        if field not in TOP_LEVEL_FIELDS:
            raise fail(Problem((str(field),), f"unknown field; expected only {', '.join(TOP_LEVEL_FIELDS)}"))
    for field in ("apiVersion", "kind"):
        if field not in obj:
            raise fail(Problem((field,), "required field is missing"))
    cls = resource_class(kind, obj["apiVersion"])
    if isinstance(cls, Problem):
        raise fail(cls)
    try:
        resource = cls.model_validate({key: value for key, value in obj.items() if key in ("metadata", "spec")})
    except ValidationError as exc:
        raise fail(problem_from_validation_error(exc)) from None
    if problem := next(resource_problems(resource), None):
        raise fail(problem)
    return resource


def _documents(source: Source) -> list[Document]:
    if isinstance(source, Mapping):
        return [Document(dict(source), "")]
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.endswith(YAML_SUFFIXES)
    ):
        path = os.fspath(source)
        try:
            text = FilePath(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("file", str(path), "", f"cannot read it: {exc}") from exc
        return _yaml_documents(text, str(path))
    if isinstance(source, str):
        return _yaml_documents(source, "YAML")
    if isinstance(source, Sequence):
        return [Document(item, f"item {index}") for index, item in enumerate(source, start=1)]
    raise ConfigError("resource", "?", "", f"cannot load a {type(source).__name__}: give a path, YAML text, "
                      "a dict or a list of dicts")


def _yaml_documents(text: str, name: str) -> list[Document]:
    """Each non-empty document with its node tree, for line numbers."""
    documents: list[Document] = []
    loader = yaml.SafeLoader(text)
    index = 0
    try:
        while loader.check_node():
            index += 1
            node = loader.get_node()
            where = f"{name} document {index}"
            if duplicate := _duplicate_key(node):
                raise ConfigError("resource", "?", "", f"duplicate key {duplicate.value!r} "
                                  f"({where}, line {duplicate.start_mark.line + 1})")
            data = loader.construct_document(node)
            if data is not None:
                documents.append(Document(data, where, node))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("resource", "?", "", f"not valid YAML: {problem} ({name} document {index}{line})") from exc
    finally:
        loader.dispose()
    return documents


def _duplicate_key(node: yaml.Node) -> yaml.Node | None:
    """The first key node that repeats a key of the same mapping, anywhere below `node`."""
    if isinstance(node, yaml.MappingNode):
        keys: set[object] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    return key
                keys.add(key.value)
            if found := _duplicate_key(value):
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if found := _duplicate_key(item):
                return found
    return None


def _line_of(node: yaml.Node, path: Path) -> int:
    """The 1-based line of the deepest part of `path` found in the node tree."""
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if key.value == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
