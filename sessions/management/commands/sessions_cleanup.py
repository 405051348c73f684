"""``python manage.py sessions_cleanup``: delete interactions past their ttl.

DynamoDB deletes them by itself (TTL); DynamoDB Local does not. This scans the table (the
one place that does), so it is meant for DynamoDB Local and for one-off maintenance."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sessions.cleanup import sessions_expired_delete
from skymarshal_api.web.errors import ApplicationError


class Command(BaseCommand):
    help = "Delete session interactions whose ttl has passed and print how many."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            deleted = sessions_expired_delete()
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} expired items"))
