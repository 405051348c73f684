"""Imported first by the fork server that starts the tests' servers (scripts/stack.py,
``servers_forked``), in that process: it dies with the process that started it, and so do
the servers forked from it (each dies with the fork server). Without this, a test process
killed outright would leave its fork server, and the servers forked from it, running."""

from __future__ import annotations

import os
import signal

from scripts.stack import die_with_parent

die_with_parent()
if os.getppid() == 1:  # the parent died before the line above: nothing owns this process
    os.kill(os.getpid(), signal.SIGTERM)
