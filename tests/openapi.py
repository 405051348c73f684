"""The committed OpenAPI document (openapi.yaml) as the tests read it: its operations, its
documented examples and a JSON Schema validator for any schema in it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from scripts.stack import ROOT

OPENAPI_YAML = ROOT / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REGENERATE = "run `make schema` (and commit openapi.yaml)"


def openapi_document(path: Path = OPENAPI_YAML) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def operation_id(self) -> str:
        return str(self.spec["operationId"])

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def authenticated(self) -> bool:
        return bool(self.spec.get("security"))


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method in HTTP_METHODS:
                yield Operation(method, path, spec)


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: ``nullable: true`` allows null."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A validator of ``schema``, whose ``$ref``s point into ``document``'s components."""
    root = {
        **_as_json_schema(schema),
        "components": _as_json_schema(document.get("components", {})),
    }
    return jsonschema.Draft7Validator(
        root, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


@dataclass(frozen=True)
class Example:
    operation: Operation
    status: str | None  # None for a request body example
    media_type: str
    name: str
    value: Any
    schema: dict[str, Any]


def examples(document: dict[str, Any]) -> Iterator[Example]:
    """Every example of a request or response body in ``document``."""
    for operation in operations(document):
        bodies: list[tuple[str | None, dict[str, Any]]] = []
        if "requestBody" in operation.spec:
            bodies.append((None, operation.spec["requestBody"]))
        bodies += [(status, response) for status, response in operation.spec["responses"].items()]
        for status, body in bodies:
            for media_type, content in body.get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    yield Example(
                        operation, status, media_type, name, example["value"], content["schema"]
                    )


def documented_error(
    document: dict[str, Any], operation_id: str, status: int, error_code: str
) -> dict[str, Any]:
    """The documented example of ``error_code`` answered with ``status`` by an operation."""
    for example in examples(document):
        if (
            example.operation.operation_id == operation_id
            and example.status == str(status)
            and example.media_type == "application/json"
            and example.value.get("error_code") == error_code
        ):
            return dict(example.value)
    raise AssertionError(f"{operation_id} documents no {status} example of {error_code}")
