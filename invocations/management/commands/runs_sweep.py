"""``python manage.py runs_sweep``: end every run past its deadline as lost (WORKER_LOST),
with its interaction, and release its session; send the webhook deliveries that are due;
``--every N`` repeats every N seconds (``make run`` keeps one going)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from invocations.sweeper import runs_sweep
from skymarshal_api.web.errors import ApplicationError


class Command(BaseCommand):
    help = "End the runs whose deadline has passed without an outcome; print how many."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=None,
            metavar="SECONDS",
            help="sweep again every SECONDS until stopped",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every: float | None = options["every"]
        if every is not None and every <= 0:
            raise CommandError("--every must be a positive number of seconds")
        while True:
            try:
                report = runs_sweep()
            except ApplicationError as exc:
                if every is None:
                    raise CommandError(exc.message) from exc
                self.stderr.write(f"Sweep failed: {exc.message}")
            else:
                self.stdout.write(
                    f"Ended {len(report.ended)} lost runs"
                    + (f"; {len(report.failed)} could not be ended" if report.failed else "")
                    + f"; sent {len(report.deliveries.attempted)} webhook deliveries"
                )
            if every is None:
                return
            self.stdout.flush()
            time.sleep(every)
