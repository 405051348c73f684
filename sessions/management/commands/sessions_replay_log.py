"""``python manage.py sessions_replay_log FILE``: write back interactions that were logged
because the sessions table could not take them."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions.records import ReplayRecordUnreadable, replay_records_find
from sessions.services import interaction_replay
from skymarshal_api.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Restore the interactions logged as SKYMARSHAL_REPLAY records (from a log export, "
        "plain or JSON lines; - for standard input). Safe to run more than once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Log file to read, or - for standard input.")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["file"]
        try:
            if source == "-":
                lines = sys.stdin.read().splitlines()
            else:
                lines = Path(source).read_text(errors="replace").splitlines()
        except OSError as exc:
            raise CommandError(f"Cannot read {source}: {exc.strerror}") from exc
        outcomes: Counter[str] = Counter()
        try:
            for record in replay_records_find(lines):
                outcomes[interaction_replay(record)] += 1
        except ReplayRecordUnreadable as exc:
            raise CommandError(str(exc)) from exc
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} (after {sum(outcomes.values())} records)") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{sum(outcomes.values())} records: {outcomes['restored']} restored, "
                f"{outcomes['completed']} completed, {outcomes['already_present']} already present"
                + (
                    f", {outcomes['superseded']} replaced a lost run's record"
                    if outcomes["superseded"]
                    else ""
                )
            )
        )
