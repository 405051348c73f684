"""DynamoDB's responses parsed without walking every attribute value's ten members.

botocore parses each AttributeValue of a response as a generic structure: for every value
it looks up all ten members (S, N, B, SS, NS, BS, M, L, NULL, BOOL) through the service
model. A history page of 50 interactions holds some 400 of them, and that walk took about
1.9 ms of a page's ~12 ms (the same 20 KB body is 0.24 ms of ``json.loads``). On the wire
an AttributeValue is a JSON object with one member, so the common case is read directly:
the same output as botocore's (a blob base64-decoded, the rest as sent), and anything else
(no member, several, one botocore does not know, a value of the wrong JSON type) still
goes through botocore's own parsing. A test holds the two to the same output.
"""

from __future__ import annotations

from typing import Any

from botocore import parsers

_PLAIN = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
# botocore's stubs leave out the parser's internals this class builds on.
_JSONParser: Any = parsers.JSONParser


class DynamoDBJSONParser(_JSONParser):  # type: ignore[misc]
    """botocore's JSON protocol parser, with a fast path for shapes named AttributeValue
    (only DynamoDB's and DynamoDB Streams' models have one)."""

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and type(value) is dict and len(value) == 1:
            parsed = self._attribute_value(shape, value)
            if parsed is not None:
                return parsed
        return super()._handle_structure(shape, value)

    def _handle_map(self, shape: Any, value: Any) -> Any:
        # An item: its attribute names are plain strings.
        if shape.value.name == "AttributeValue" and type(value) is dict:
            attribute = shape.value
            return {name: self._handle_structure(attribute, item) for name, item in value.items()}
        return super()._handle_map(shape, value)

    def _attribute_value(self, shape: Any, value: dict[str, Any]) -> dict[str, Any] | None:
        """The AttributeValue ``value`` as botocore parses it, or None to leave it to
        botocore."""
        ((tag, inner),) = value.items()
        plain = _PLAIN.get(tag)
        if plain is not None:
            return {tag: inner} if type(inner) is plain else None
        if tag == "M" and type(inner) is dict:
            return {"M": {key: self._handle_structure(shape, item) for key, item in inner.items()}}
        if tag == "L" and type(inner) is list:
            return {"L": [self._handle_structure(shape, item) for item in inner]}
        if tag == "B" and type(inner) is str:
            return {"B": self._blob_parser(inner)}
        if tag in ("SS", "NS", "BS") and type(inner) is list:
            if not all(type(item) is str for item in inner):
                return None
            if tag == "BS":
                return {"BS": [self._blob_parser(item) for item in inner]}
            return {tag: list(inner)}
        return None


def dynamodb_parser_install() -> None:
    """Make DynamoDBJSONParser botocore's parser of the JSON protocol in this process:
    botocore picks a parser for each response, so every client's next response uses it;
    other services' JSON responses parse as before."""
    protocol_parsers: dict[str, Any] = parsers.PROTOCOL_PARSERS
    protocol_parsers["json"] = DynamoDBJSONParser
