"""Reads from the sessions table."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException, TableDoesNotExist

from sessions.models import SessionInteraction
from skymarshal_api.errors import StorageUnavailable


def sessions_table_status() -> str:
    """The table's status from DescribeTable (``ACTIVE`` when usable).

    Raises StorageUnavailable when DynamoDB cannot be reached or the table does not exist.
    """
    table_name = SessionInteraction.Meta.table_name
    try:
        description = SessionInteraction.describe_table()
    except TableDoesNotExist as exc:
        raise StorageUnavailable(
            f"Table {table_name} does not exist; run `python manage.py ensure_sessions_table`."
        ) from exc
    except (PynamoDBException, BotoCoreError) as exc:
        raise StorageUnavailable(f"DynamoDB did not answer DescribeTable: {exc}") from exc
    return str(description.get("TableStatus", "UNKNOWN"))
