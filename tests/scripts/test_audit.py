"""`make audit` (scripts/audit.py): passes only when pip-audit really audited every package.

The subprocess tests run ``python -m scripts.audit`` for real and never depend on this
machine's network: the vulnerability service is either made unreachable (a proxy on a
closed port) or replaced by a fake OSV API on 127.0.0.1, and pip-audit gets an empty cache
directory so that no earlier audit's cached answers can stand in for the service.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts.audit import DEFAULT_REQUIREMENTS, audit_verdict
from scripts.stack import ROOT, free_port

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
# One of six 1.17.0's hashes; pip-audit requires a hash on every line but does not check it.
SIX_HASH = "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"

OsvServer = Callable[[dict[str, list[dict[str, Any]]]], str]


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without proxies, with pip's and pip-audit's caches empty."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in PROXY_VARIABLES and key != "PIP_NO_CACHE_DIR"
    }
    env["PIP_CACHE_DIR"] = str(tmp_path / "pip-cache")
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    env.update(extra)
    return env


def _run_audit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.audit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _locked_packages() -> int:
    text = DEFAULT_REQUIREMENTS.read_text()
    return len(re.findall(r"^[A-Za-z0-9][A-Za-z0-9._-]*==", text, flags=re.MULTILINE))


def _osv_vuln(package: str, vuln_id: str, fixed: str) -> dict[str, Any]:
    return {
        "id": vuln_id,
        "aliases": ["CVE-2099-0001"],
        "summary": "test vulnerability",
        "affected": [
            {
                "package": {"name": package, "ecosystem": "PyPI"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


@pytest.fixture
def osv_server() -> Iterator[OsvServer]:
    """Start a fake OSV query API on 127.0.0.1 that knows the given vulnerabilities."""
    servers: list[ThreadingHTTPServer] = []

    def start(vulns: dict[str, list[dict[str, Any]]]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                found = vulns.get(query["package"]["name"], [])
                body = json.dumps({"vulns": found} if found else {}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1/query"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- the real script, as `make audit` runs it -------------------------------------------------


@pytest.mark.parametrize("service", ["pypi", "osv"])
def test_unreachable_service_is_a_failure_not_a_pass(tmp_path: Path, service: str) -> None:
    port = free_port()  # nothing listens on it
    closed = f"http://127.0.0.1:{port}"
    env = _environment(tmp_path, HTTPS_PROXY=closed, HTTP_PROXY=closed)

    result = _run_audit(env, "--vulnerability-service", service)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "could not audit" in output
    assert "ProxyError" in output  # the cause is the closed proxy, nothing else
    assert f"port={port}" in output
    assert "no known vulnerabilities" not in output.lower()


def test_every_locked_package_audited_and_clean_passes(
    tmp_path: Path, osv_server: OsvServer
) -> None:
    url = osv_server({})

    result = _run_audit(_environment(tmp_path), "--vulnerability-service", "osv", "--osv-url", url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"audited {_locked_packages()} packages: no known vulnerabilities"
    )


def test_a_known_vulnerability_fails_with_its_id_and_fix(
    tmp_path: Path, osv_server: OsvServer
) -> None:
    url = osv_server({"django": [_osv_vuln("django", "GHSA-test-0001", "99.0")]})

    result = _run_audit(_environment(tmp_path), "--vulnerability-service", "osv", "--osv-url", url)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "found 1 known vulnerabilities" in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("  django ")]
    # pip-audit decides which of a vulnerability's ids comes first; both are listed.
    assert "GHSA-test-0001" in line
    assert "CVE-2099-0001" in line
    assert line.endswith("(fixed in 99.0)")
    assert "could not audit" not in result.stderr


def test_a_skipped_package_fails_although_pip_audit_passes(
    tmp_path: Path, osv_server: OsvServer
) -> None:
    # pip-audit skips a URL requirement, prints "No known vulnerabilities found" and exits 0.
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        f"six==1.17.0 \\\n    --hash={SIX_HASH}\n"
        f"example-pkg @ https://example.invalid/example_pkg-1.0.tar.gz \\\n"
        f"    --hash={SIX_HASH}\n"
    )
    url = osv_server({})

    result = _run_audit(
        _environment(tmp_path),
        "--requirements",
        str(lock),
        "--vulnerability-service",
        "osv",
        "--osv-url",
        url,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(
        "could not audit: 1 of 2 packages were skipped: "
        "URL requirements cannot be pinned to a specific package version"
    )
    assert "skipped: example-pkg" in result.stderr


def test_timeout_is_a_failure(tmp_path: Path) -> None:
    result = _run_audit(_environment(tmp_path), "--timeout", "0.01")

    assert result.returncode == 1
    assert result.stderr.strip() == "could not audit: pip-audit did not finish within 0.01 s"


# --- the verdict on pip-audit's JSON report ---------------------------------------------------


def _audited(name: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "vulns": list(vulns)}


def _skipped(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)",
    }


def test_verdict_all_audited_and_clean_is_success() -> None:
    report = {"dependencies": [_audited("django"), _audited("six")], "fixes": []}

    assert audit_verdict(report) == (0, "audited 2 packages: no known vulnerabilities")


def test_verdict_one_skipped_is_could_not_audit() -> None:
    report = {"dependencies": [_audited("django"), _skipped("six")], "fixes": []}

    status, message = audit_verdict(report)

    assert status == 1
    assert message.startswith(
        "could not audit: 1 of 2 packages were skipped: "
        "Dependency not found on PyPI and could not be audited: six (1.0)"
    )
    assert "skipped: six" in message


def test_verdict_lists_a_few_skipped_names() -> None:
    report = {"dependencies": [_skipped(f"pkg{i}") for i in range(8)], "fixes": []}

    status, message = audit_verdict(report)

    assert status == 1
    assert "could not audit: 8 of 8 packages were skipped" in message
    assert "skipped: pkg0, pkg1, pkg2, pkg3, pkg4 and 3 more" in message


def test_verdict_one_vulnerability_fails_with_its_id() -> None:
    vuln = {"id": "PYSEC-2099-1", "fix_versions": ["1.1", "2.0.1"], "aliases": []}
    report = {"dependencies": [_audited("django", vuln), _audited("six")], "fixes": []}

    status, message = audit_verdict(report)

    assert status == 1
    assert (
        message
        == "found 1 known vulnerabilities:\n  django 1.0: PYSEC-2099-1 (fixed in 1.1, 2.0.1)"
    )


def test_verdict_vulnerability_and_skip_reports_both() -> None:
    vuln = {"id": "GHSA-xxxx", "fix_versions": []}
    report = {"dependencies": [_audited("django", vuln), _skipped("six")], "fixes": []}

    status, message = audit_verdict(report)

    assert status == 1
    assert "django 1.0: GHSA-xxxx (no fix released)" in message
    assert "could not audit: 1 of 2 packages were skipped" in message


@pytest.mark.parametrize(
    "report",
    [
        {"dependencies": [], "fixes": []},
        {"fixes": []},
        {"dependencies": "django"},
        [],
        None,
        {"dependencies": ["django"]},
    ],
)
def test_verdict_nothing_audited_is_not_success(report: object) -> None:
    status, message = audit_verdict(report)

    assert status == 1
    assert message.startswith("could not audit: ")


def test_verdict_entry_without_vulns_list_counts_as_skipped() -> None:
    report = {"dependencies": [{"name": "django", "version": "1.0"}], "fixes": []}

    status, message = audit_verdict(report)

    assert status == 1
    assert message.startswith("could not audit: 1 of 1 packages were skipped")
