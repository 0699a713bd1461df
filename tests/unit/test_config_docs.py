"""docs/config.md cannot drift from the models: every field, every refusal, the generated tables verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.config.kinds import RESOURCE_CLASSES, UNSUPPORTED_KINDS
from meshkit.config.reference import (
    BEGIN_MARKER,
    END_MARKER,
    field_choices,
    model_fields,
    models_of_kind,
    reference,
)
from meshkit.config.schema import ObjectMeta, unsupported_reason

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
MODELS = sorted({model for cls in RESOURCE_CLASSES for model in models_of_kind(cls)} | {ObjectMeta},
                key=lambda model: model.__name__)


def test_the_generated_reference_is_in_the_docs_verbatim() -> None:
    start = DOCS.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = DOCS.index(END_MARKER)
    assert DOCS[start:end].strip() == reference().strip(), "run python -m meshkit.config.reference"


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_field_is_documented(model: type) -> None:
    assert f"### {model.__name__}" in DOCS or model is ObjectMeta
    for alias, _ in model_fields(model):  # type: ignore[arg-type]
        assert f"| `{alias}` |" in DOCS, f"{model.__name__}.{alias} is not in docs/config.md"


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_refused_field_and_value_is_documented_with_its_message(model: type) -> None:
    for field, why in model.UNSUPPORTED.items():  # type: ignore[attr-defined]
        assert f"`{unsupported_reason(field, why)}`" in DOCS
    for _, info in model_fields(model):  # type: ignore[arg-type]
        for rule in field_choices(info):
            for value, why in rule.unsupported:
                assert f"`{unsupported_reason(value, why)}`" in DOCS


def test_every_kind_and_refused_kind_is_documented() -> None:
    for cls in RESOURCE_CLASSES:
        assert f"## {cls.KIND}" in DOCS
        for version in cls.API_VERSIONS:
            assert version in DOCS
    for group, kind in UNSUPPORTED_KINDS:
        assert f"| {kind} ({group}) |" in DOCS


def test_the_docs_say_istio_has_no_local_rate_limit_resource() -> None:
    assert "Istio has no first-class\nresource for local rate limiting" in DOCS
