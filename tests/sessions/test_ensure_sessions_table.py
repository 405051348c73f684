"""`manage.py ensure_sessions_table` against DynamoDB Local."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from django.core.management import CommandError, call_command

from scripts.stack import Server, free_port


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _ensure(*args: str) -> str:
    out = io.StringIO()
    call_command("ensure_sessions_table", *args, stdout=out)
    return out.getvalue()


def test_creates_the_design_table(dynamodb_settings: Any, dynamodb_local: Server) -> None:
    name = dynamodb_settings.SESSION_TABLE_NAME
    assert f"Created {name}" in _ensure()

    client = _client(dynamodb_local.http_url)
    table = client.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("session_id", "HASH"),
        ("timestamp", "RANGE"),
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "user-sessions-index"
    assert {(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]} == {
        ("user_id", "HASH"),
        ("timestamp", "RANGE"),
    }
    assert index["Projection"]["ProjectionType"] == "ALL"
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_is_idempotent(dynamodb_settings: Any, dynamodb_local: Server) -> None:
    name = dynamodb_settings.SESSION_TABLE_NAME
    _ensure()
    client = _client(dynamodb_local.http_url)
    client.put_item(
        TableName=name,
        Item={"session_id": {"S": "s"}, "timestamp": {"N": "1"}, "user_id": {"S": "u"}},
    )
    assert _ensure() == f"{name} already exists; nothing to do\n"
    assert _ensure() == f"{name} already exists; nothing to do\n"
    assert client.get_item(TableName=name, Key={"session_id": {"S": "s"}, "timestamp": {"N": "1"}})[
        "Item"
    ]
    assert name in client.list_tables()["TableNames"]


def test_enables_ttl_on_an_existing_table_without_it(
    dynamodb_settings: Any, dynamodb_local: Server
) -> None:
    name = dynamodb_settings.SESSION_TABLE_NAME
    _ensure()
    client = _client(dynamodb_local.http_url)
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"}
    )
    assert _ensure() == f"{name} already exists; enabled TTL on ttl\n"
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_refuses_a_table_with_another_schema(
    dynamodb_settings: Any, dynamodb_local: Server
) -> None:
    name = dynamodb_settings.SESSION_TABLE_NAME
    _client(dynamodb_local.http_url).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(CommandError, match="exists with keys"):
        _ensure()


def test_command_options_override_the_settings(
    dynamodb_settings: Any, dynamodb_local: Server
) -> None:
    assert "Created other-table-name" in _ensure(
        "--table-name", "other-table-name", "--endpoint-url", dynamodb_local.http_url
    )
    client = _client(dynamodb_local.http_url)
    assert "other-table-name" in client.list_tables()["TableNames"]
    client.delete_table(TableName="other-table-name")


def test_unreachable_endpoint_is_a_clear_error(dynamodb_settings: Any) -> None:
    dynamodb_settings.DYNAMODB_MAX_RETRY_ATTEMPTS = 0
    with pytest.raises(CommandError, match="Could not ensure table"):
        _ensure("--endpoint-url", f"http://127.0.0.1:{free_port()}")
