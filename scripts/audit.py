"""``make audit``: pip-audit the locked runtime dependencies, and fail unless it really audited.

Runs pip-audit on ``requirements.lock`` (fully pinned and hashed by uv, so pip is not needed
to resolve anything: ``--disable-pip``) with a JSON report, and decides from that report:

* exit 0, "audited N packages: no known vulnerabilities", only when every package in the
  report was actually checked against the vulnerability service and none has a known
  vulnerability;
* exit 1, listing package, version, vulnerability id and fix versions, when any has one;
* exit 1, "could not audit: ...", when pip-audit crashed, timed out or wrote no JSON report,
  when any package was skipped, or when the report holds no package at all.

Why not just run pip-audit: when it cannot reach the vulnerability service's data for a
package (the PyPI JSON API answering 404 behind a firewall or mirror, for instance), it
*skips* that package, and with every package skipped it still prints "No known
vulnerabilities found" and exits 0. An audit that audited nothing must not pass.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REQUIREMENTS = ROOT / "requirements.lock"
SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 300
# How many skipped package names the "could not audit" message lists before "and N more".
SHOWN_NAMES = 5


def pip_audit_command(requirements: Path, service: str, osv_url: str | None = None) -> list[str]:
    """The pip-audit invocation: hashed lock as is, no pip, JSON on stdout, no spinner."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--disable-pip",
        "--require-hashes",
        "--requirement",
        str(requirements),
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    if osv_url is not None:
        command += ["--osv-url", osv_url]
    return command


def _could_not_audit(reason: str) -> tuple[int, str]:
    return 1, f"could not audit: {reason}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    if len(names) > SHOWN_NAMES:
        shown += f" and {len(names) - SHOWN_NAMES} more"
    return shown


def audit_verdict(report: object) -> tuple[int, str]:
    """Exit status and message for a parsed pip-audit JSON report (``--format json``).

    The report looks like ``{"dependencies": [...], "fixes": [...]}``; an audited
    dependency is ``{"name", "version", "vulns": [{"id", "fix_versions", ...}]}`` and a
    skipped one is ``{"name", "skip_reason"}``. Only a report in which every dependency
    was audited, and there is at least one, and none has a vulnerability, gives 0.
    """
    if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
        return _could_not_audit("pip-audit's JSON report has no 'dependencies' list")
    dependencies: list[object] = report["dependencies"]
    if not dependencies:
        return _could_not_audit("pip-audit's report lists no packages at all")

    skipped: list[tuple[str, str]] = []
    vulnerable: list[str] = []
    vulnerability_count = 0
    for dependency in dependencies:
        if not isinstance(dependency, dict):
            return _could_not_audit(f"unexpected entry in pip-audit's report: {dependency!r}")
        name = str(dependency.get("name", "?"))
        if "skip_reason" in dependency or not isinstance(dependency.get("vulns"), list):
            reason = dependency.get("skip_reason") or "no 'vulns' list in pip-audit's report"
            skipped.append((name, str(reason)))
            continue
        version = str(dependency.get("version", "?"))
        for vuln in dependency["vulns"]:
            vuln = vuln if isinstance(vuln, dict) else {"id": repr(vuln)}
            vulnerability_count += 1
            ids = [str(vuln.get("id", "?"))]
            ids += [str(alias) for alias in vuln.get("aliases") or [] if alias not in ids]
            fixes = [str(fix) for fix in vuln.get("fix_versions") or []]
            fixed_in = f"fixed in {', '.join(fixes)}" if fixes else "no fix released"
            vulnerable.append(f"  {name} {version}: {' / '.join(ids)} ({fixed_in})")

    lines: list[str] = []
    if vulnerable:
        lines.append(f"found {vulnerability_count} known vulnerabilities:")
        lines += vulnerable
    if skipped:
        lines.append(
            f"could not audit: {len(skipped)} of {len(dependencies)} packages were skipped: "
            f"{skipped[0][1]}"
        )
        lines.append(f"  skipped: {_names([name for name, _ in skipped])}")
    if lines:
        return 1, "\n".join(lines)
    return 0, f"audited {len(dependencies)} packages: no known vulnerabilities"


def _last_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(nothing on stderr)"
    last = lines[-1]
    return last if len(last) <= limit else last[: limit - 3] + "..."


def run_audit(
    requirements: Path,
    service: str,
    osv_url: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> tuple[int, str]:
    """Run pip-audit on ``requirements`` and judge its report with :func:`audit_verdict`."""
    if not requirements.is_file():
        return _could_not_audit(f"{requirements} does not exist")
    command = pip_audit_command(requirements, service, osv_url)
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return _could_not_audit(f"pip-audit did not finish within {timeout:g} s")
    except OSError as error:
        return _could_not_audit(f"pip-audit could not be started: {error}")

    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return _could_not_audit(
            f"pip-audit exited {completed.returncode} without a JSON report: "
            f"{_last_line(completed.stderr)}"
        )
    status, message = audit_verdict(report)
    # pip-audit exits 1 when it finds vulnerabilities; any other failure with a clean report
    # means something went wrong after the report was written and is not a pass either.
    if status == 0 and completed.returncode != 0:
        return _could_not_audit(
            f"pip-audit exited {completed.returncode} although its report is clean: "
            f"{_last_line(completed.stderr)}"
        )
    return status, message


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.audit",
        description="pip-audit the locked dependencies; fail unless every package was audited.",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        default=DEFAULT_REQUIREMENTS,
        help="hashed, fully pinned requirements file (default: requirements.lock)",
    )
    parser.add_argument(
        "--vulnerability-service",
        choices=SERVICES,
        default="pypi",
        help="vulnerability service pip-audit queries (default: pypi)",
    )
    parser.add_argument(
        "--osv-url",
        default=None,
        help="OSV API URL instead of pip-audit's default (with --vulnerability-service osv)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_SECONDS,
        help=f"seconds pip-audit may take in all (default: {TIMEOUT_SECONDS})",
    )
    args = parser.parse_args(argv)
    status, message = run_audit(
        args.requirements, args.vulnerability_service, args.osv_url, args.timeout
    )
    print(message, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
