"""``python manage.py sessions_replay_log FILE``: write back interactions that were logged
because the sessions table could not take them."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions.records import ReplayLineUnreadable, replay_log_read
from sessions.replay import interaction_replay
from skymarshal_api.web.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Restore the interactions logged as SKYMARSHAL_REPLAY records (from a log export, "
        "plain or JSON lines; - for standard input). Safe to run more than once. Lines that "
        "cannot be read are reported at the end and skipped; then the exit status is 1."
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
        unreadable: list[ReplayLineUnreadable] = []
        for found in replay_log_read(lines):
            if isinstance(found, ReplayLineUnreadable):
                unreadable.append(found)
                continue
            try:
                outcomes[interaction_replay(found.record)] += 1
            except ApplicationError as exc:
                raise CommandError(
                    f"{exc.message} (line {found.line}, after {sum(outcomes.values())} records)"
                ) from exc
        self.stdout.write(
            f"{sum(outcomes.values())} records: {outcomes['restored']} restored, "
            f"{outcomes['completed']} completed, {outcomes['already_present']} already present"
            + (
                f", {outcomes['superseded']} replaced a lost run's record"
                if outcomes["superseded"]
                else ""
            )
        )
        if unreadable:
            for line in sorted(unreadable, key=lambda u: u.line):
                self.stderr.write(f"line {line.line}: {line.reason}")
            numbers = ", ".join(str(u.line) for u in sorted(unreadable, key=lambda u: u.line))
            raise CommandError(
                f"{len(unreadable)} line(s) could not be read and were skipped: line(s) {numbers}"
            )
