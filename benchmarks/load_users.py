"""The load test's users: each signs as an IAM principal of its own, like independent
clients, so the per-caller rate limits of the API stay as configured. The keys exist only
in the stack ``make load`` starts on this machine.

(No locust import here: benchmarks/load.py imports this module, and locust monkey-patches
the standard library the moment it is imported.)
"""

from __future__ import annotations


def load_key(number: int) -> tuple[str, str, str]:
    """(access key id, secret, principal ARN) of load-test user ``number``."""
    return (
        f"AKIALOADTEST{number:08d}",
        f"skymarshal-load-test-secret-{number:08d}",
        f"arn:aws:iam::000000000000:user/load-test-{number:08d}",
    )


def load_keys(users: int) -> dict[str, dict[str, str]]:
    """SIGV4_LOCAL_KEYS for ``users`` load-test users."""
    keys = {}
    for number in range(users):
        key, secret, principal = load_key(number)
        keys[key] = {"secret": secret, "principal": principal}
    return keys
