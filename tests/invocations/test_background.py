"""Where background runs wait on Lambda: a task's invocation has the function's timeout."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("timeout", "deadline", "wait"), [(300, 280, 10), (300, 120, 170), (300, 300, 1)]
)
def test_a_lambda_task_waits_only_while_its_run_still_fits(
    settings: Any, timeout: float, deadline: float, wait: float
) -> None:
    from invocations.deadlines import lambda_wait_seconds

    settings.RUN_TASK_TIMEOUT_SECONDS = timeout
    settings.AGENTCORE_DEADLINE_SECONDS = deadline
    assert lambda_wait_seconds() == wait
