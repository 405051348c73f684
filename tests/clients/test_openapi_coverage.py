"""The client covers openapi.yaml: every operation (method and path), each of its
parameters and request body fields, each field of every response schema, and an exception
type for each documented error code. An endpoint or field added to the API without client
support fails here (and `make schema` is what adds it to openapi.yaml)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from skymarshal_client import Client
from skymarshal_client.client import OPERATIONS
from skymarshal_client.errors import ERRORS_BY_CODE
from skymarshal_client.models import MODELS_BY_SCHEMA
from tests.openapi import openapi_document, operations


def _refs(node: Any) -> set[str]:
    """The schema components ``node`` refers to (not its header components)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        schema = isinstance(ref, str) and ref.startswith("#/components/schemas/")
        found = {ref.rsplit("/", 1)[-1]} if schema else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _error_codes(node: Any) -> set[str]:
    if isinstance(node, dict):
        code = node.get("error_code")
        found = {code} if isinstance(code, str) and "status" in node else set()
        for value in node.values():
            found |= _error_codes(value)
        return found
    if isinstance(node, list):
        return set().union(*(_error_codes(item) for item in node)) if node else set()
    return set()


def test_every_operation_is_a_client_method_with_all_its_parameters() -> None:
    document = openapi_document()
    documented = {op.operation_id: op for op in operations(document)}
    assert set(documented) == set(OPERATIONS), (
        f"operations without client support: {sorted(set(documented) - set(OPERATIONS))}; "
        f"client operations the API no longer has: {sorted(set(OPERATIONS) - set(documented))}"
    )
    for operation_id, op in documented.items():
        support = OPERATIONS[operation_id]
        assert (support.method, support.path) == (op.method, op.path), operation_id
        parameters = {p["name"] for p in op.spec.get("parameters", [])}
        assert parameters == set(support.parameters), (operation_id, parameters)
        body = op.spec.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[-1]]
            assert set(schema["properties"]) == set(support.body), operation_id
        for function in support.functions:
            assert callable(getattr(Client, function, None)), f"Client.{function}"
            keywords = set(inspect.signature(getattr(Client, function)).parameters)
            for field in support.body - {"streaming"}:
                assert field in keywords, f"Client.{function} lacks {field}"


def test_every_response_schema_is_a_model_with_all_its_fields() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    used: set[str] = set()
    for op in operations(document):
        if op.operation_id == "schema_get":
            continue  # the OpenAPI document itself
        used |= _refs(op.spec.get("responses", {}))
    pending = set(used)
    while pending:  # and the schemas they refer to
        name = pending.pop()
        for ref in _refs(schemas[name]) - used:
            used.add(ref)
            pending.add(ref)
    objects = {name for name in used if schemas[name].get("type") == "object"}
    missing = sorted(objects - set(MODELS_BY_SCHEMA))
    assert not missing, f"response schemas without a client model: {missing}"
    for name in objects:
        model = {f.name for f in dataclasses.fields(MODELS_BY_SCHEMA[name])}
        absent = set(schemas[name].get("properties", {})) - model
        assert not absent, f"{name}: fields without a client attribute: {sorted(absent)}"


def test_every_documented_error_code_has_its_exception_type() -> None:
    codes = _error_codes(openapi_document()["paths"])
    assert "SESSION_BUSY" in codes  # the examples were found
    missing = sorted(codes - set(ERRORS_BY_CODE))
    assert not missing, f"error codes without an exception type: {missing}"
    for code in codes:
        assert ERRORS_BY_CODE[code].error_code == code
