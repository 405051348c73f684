"""The DynamoDB response parser's fast path gives botocore's own output, for any response."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
from botocore import parsers
from hypothesis import given
from hypothesis import strategies as st

from sessions.dynamodb_parser import DynamoDBJSONParser
from sessions.models import SessionInteraction
from sessions.selectors import _number

_MODEL = botocore.session.get_session().get_service_model("dynamodb")
_text = st.text(max_size=12)
_blob = st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode())
_leaf = st.one_of(
    st.builds(lambda v: {"S": v}, _text),
    st.builds(lambda v: {"N": v}, st.integers().map(str)),
    st.builds(lambda v: {"B": v}, _blob),
    st.builds(lambda v: {"SS": v}, st.lists(_text, max_size=3)),
    st.builds(lambda v: {"NS": v}, st.lists(st.integers().map(str), max_size=3)),
    st.builds(lambda v: {"BS": v}, st.lists(_blob, max_size=3)),
    st.builds(lambda v: {"NULL": v}, st.booleans()),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
    # What botocore must be left to: no member, several, unknown, None, wrong JSON types.
    st.just({}),
    st.builds(lambda a, b: {"S": a, "N": b}, _text, st.integers().map(str)),
    st.builds(lambda v: {"X": v}, _text),
    st.sampled_from(["S", "N", "B", "M", "L", "SS", "BS", "BOOL", "NULL"]).map(
        lambda tag: {tag: None}
    ),
    st.builds(lambda v: {"S": v}, st.integers()),
    st.builds(lambda v: {"SS": v}, st.lists(st.integers(), min_size=1, max_size=2)),
    st.builds(lambda v: {"BOOL": v}, st.integers(min_value=0, max_value=1)),
)
_value = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda v: {"M": v}, st.dictionaries(_text, inner, max_size=3)),
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
    ),
    max_leaves=12,
)
_item = st.dictionaries(_text, _value, max_size=5)


def _parse(parser: parsers.ResponseParser, operation: str, body: dict[str, Any]) -> Any:
    response = {
        "body": json.dumps(body).encode(),
        "headers": {"x-amzn-requestid": "r"},
        "status_code": 200,
    }
    return parser.parse(response, _MODEL.operation_model(operation).output_shape)


@given(items=st.lists(_item, max_size=4), key=st.none() | _item)
def test_a_query_parses_as_botocore_parses_it(items: list[Any], key: Any) -> None:
    body: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
    if key is not None:
        body["LastEvaluatedKey"] = key
    assert _parse(DynamoDBJSONParser(), "Query", body) == _parse(
        parsers.JSONParser(), "Query", body
    )


@given(item=_item)
def test_an_item_and_an_update_s_attributes_parse_as_botocore_parses_them(item: Any) -> None:
    assert _parse(DynamoDBJSONParser(), "GetItem", {"Item": item}) == _parse(
        parsers.JSONParser(), "GetItem", {"Item": item}
    )
    body = {"Attributes": item, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}
    assert _parse(DynamoDBJSONParser(), "UpdateItem", body) == _parse(
        parsers.JSONParser(), "UpdateItem", body
    )


def test_the_app_reads_dynamodb_through_the_fast_parser(sessions_table: str) -> None:
    """Installed by the sessions app: the table's client parses with it, and a stored item
    reads back whole (a compressed response, a blob, included)."""
    assert parsers.PROTOCOL_PARSERS["json"] is DynamoDBJSONParser
    SessionInteraction(
        "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b",
        5,
        request_id="r",
        prompt="p",
        status="success",
        user_id="u",
        response={"final_decision": "ok", "nested": {"list": [1, "two", None]}},
    ).save()
    read = SessionInteraction.get("0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b", 5)
    assert read.response == {"final_decision": "ok", "nested": {"list": [1, "two", None]}}
    assert read.prompt == "p"


@given(st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1))
def test_a_number_attribute_reads_as_its_int_in_any_form_dynamodb_returns(number: int) -> None:
    """The history's Number reader: the digits this table writes, and the exponent form
    a Number may also come back in, read the same."""
    assert _number({"N": str(number)}) == number
    small = number % 10**6
    assert _number({"N": f"{small / 1000}E3"}) == small
