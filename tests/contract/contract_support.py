"""The OpenAPI document, loaded with its references resolvable, for the contract tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

PROJECT_DIR = Path(__file__).resolve().parents[2]
OPENAPI = PROJECT_DIR / "docs" / "openapi.yaml"
BODY_SCHEMA = PROJECT_DIR / "handlers" / "telemetry" / "telemetry.schema.json"
BODY_REF = "../handlers/telemetry/telemetry.schema.json"
DOC_URI = OPENAPI.resolve().as_uri()


def load_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    return doc


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_validator(doc: dict[str, Any], path: str, method: str, status: int) -> Draft202012Validator | None:
    """A validator of the JSON body documented for ``status`` (None when the status is not documented)."""
    response = doc["paths"][path][method]["responses"].get(str(status))
    if response is None:
        return None
    where = response["$ref"][1:] if "$ref" in response else f"/paths/{_escape(path)}/{method}/responses/{status}"
    registry: Registry[Any] = Registry().with_resources([
        (DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)),
        (BODY_SCHEMA.resolve().as_uri(),
         Resource.from_contents(json.loads(BODY_SCHEMA.read_text()), default_specification=DRAFT202012)),
    ])
    return Draft202012Validator({"$ref": f"{DOC_URI}#{where}/content/application~1json/schema"}, registry=registry)
