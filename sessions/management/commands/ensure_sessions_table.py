"""``python manage.py ensure_sessions_table``: create the sessions table if it is missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions.models import sessions_table_bind
from sessions.table import sessions_table_ensure
from skymarshal_api.web.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create the sessions table (keys, GSI user-sessions-index, TTL on ttl, on-demand "
        "billing) at the configured endpoint; does nothing to a table that already exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--table-name", help="Overrides SESSION_TABLE_NAME.")
        parser.add_argument(
            "--endpoint-url", help="Overrides DYNAMODB_ENDPOINT_URL (e.g. DynamoDB Local)."
        )
        parser.add_argument("--region", help="Overrides AWS_REGION.")

    def handle(self, *args: Any, **options: Any) -> None:
        sessions_table_bind(
            table_name=options["table_name"],
            endpoint_url=options["endpoint_url"],
            region=options["region"],
        )
        try:
            result = sessions_table_ensure()
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if result.created:
            message = f"Created {result.table_name} (GSI user-sessions-index, TTL on ttl)"
        elif result.ttl_enabled_now:
            message = f"{result.table_name} already exists; enabled TTL on ttl"
        else:
            message = f"{result.table_name} already exists; nothing to do"
        self.stdout.write(self.style.SUCCESS(message))
