"""``make package``: the Lambda package of a Zappa stage, built offline.

Zappa packages the virtualenv it runs in, so the package is built from ``.venv-lambda``
(requirements-lambda.lock: the runtime dependencies and Zappa, no development tools), never
from ``.venv``. That virtualenv is installed by ``make`` with uv for
``--python-platform x86_64-manylinux_2_17``: every compiled wheel in it is a manylinux2014
x86_64 wheel, which the Lambda python3.13 runtime (Amazon Linux 2023, glibc 2.34) loads, so
``use_precompiled_packages`` is off in zappa_settings.json and packaging downloads nothing.

To prove that, packaging runs with placeholder AWS credentials, no AWS profile, and every
HTTP(S) proxy pointed at a closed port on 127.0.0.1: anything that tried to reach PyPI or AWS
would fail the build instead of quietly succeeding.

Usage: python -m scripts.package STAGE [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from scripts.stack import ROOT

LAMBDA_VENV = ROOT / ".venv-lambda"
PACKAGE_DIR = ROOT / ".local" / "package"
# Lambda refuses a directly uploaded zip over 50 MB (and a function over 250 MB unzipped);
# this project keeps below 40 MiB (about 32 MB with its bytecode, 93 MB unzipped; the
# bytecode is added by Zappa's zip callback, scripts/package_prune.py).
MAX_PACKAGE_BYTES = 40 * 1024 * 1024
_CLOSED_PROXY = "http://127.0.0.1:9"


class PackageError(RuntimeError):
    pass


def default_output(stage: str) -> Path:
    return PACKAGE_DIR / f"skymarshal-api-{stage}.zip"


def offline_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``zappa package`` runs in: the Lambda virtualenv, placeholder
    credentials, and no way out to the network."""
    env = {
        key: value
        for key, value in (base if base is not None else os.environ).items()
        if not key.startswith("AWS_") and key.lower() not in ("no_proxy",)
    }
    env.update(
        {
            "VIRTUAL_ENV": str(LAMBDA_VENV),
            "PATH": f"{LAMBDA_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "AWS_ACCESS_KEY_ID": "AKIAPACKAGEOFFLINE00",
            "AWS_SECRET_ACCESS_KEY": "placeholder-credentials-for-offline-packaging",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTP_PROXY": _CLOSED_PROXY,
            "HTTPS_PROXY": _CLOSED_PROXY,
            "http_proxy": _CLOSED_PROXY,
            "https_proxy": _CLOSED_PROXY,
            "PIP_NO_INDEX": "1",
        }
    )
    return env


def package_build(stage: str, output: Path) -> Path:
    """Run ``zappa package STAGE -o OUTPUT`` offline; raises PackageError when it fails or
    the zip is larger than MAX_PACKAGE_BYTES."""
    zappa = LAMBDA_VENV / "bin" / "zappa"
    if not zappa.exists():
        raise PackageError(f"{zappa} is missing: run `make package` (it installs .venv-lambda)")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    result = subprocess.run(
        [str(zappa), "package", stage, "--output", str(output), "--disable_progress"],
        cwd=ROOT,
        env=offline_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not output.exists():
        raise PackageError(
            f"zappa package {stage} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    with zipfile.ZipFile(output) as archive:
        if "handler.py" not in archive.namelist():
            raise PackageError(f"{output} has no handler.py")
    size = output.stat().st_size
    if size >= MAX_PACKAGE_BYTES:
        raise PackageError(f"{output} is {size} bytes; the limit is {MAX_PACKAGE_BYTES}")
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.package", description=__doc__)
    parser.add_argument("stage", help="a stage of zappa_settings.json (dev, prod)")
    parser.add_argument(
        "--output", type=Path, help="default: .local/package/skymarshal-api-STAGE.zip"
    )
    args = parser.parse_args(argv)
    output = (args.output or default_output(args.stage)).resolve()
    try:
        package_build(args.stage, output)
    except PackageError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{output} ({output.stat().st_size / 1024 / 1024:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
