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

The package carries its modules' bytecode. Lambda extracts a function's code into
/var/task, which is read-only, so Python cannot keep the bytecode it compiles there: a
module without bytecode in the package is compiled again by every new execution
environment (Zappa leaves ``__pycache__`` out). Each ``.py`` of the zip gets its
``__pycache__/NAME.cpython-313.pyc``, compiled by this Python (the runtime's version,
checked against zappa_settings.json) as an unchecked-hash pyc (PEP 552): loaded without
comparing timestamps, which zip extraction does not keep to the second. ``make bench``'s
``lambda`` section measures the cold start it saves.

Usage: python -m scripts.package STAGE [--output PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import py_compile
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from scripts.stack import ROOT

LAMBDA_VENV = ROOT / ".venv-lambda"
PACKAGE_DIR = ROOT / ".local" / "package"
# Lambda refuses a directly uploaded zip over 50 MB (and a function over 250 MB unzipped);
# this project keeps below 40 MiB (about 32 MB with its bytecode, 93 MB unzipped).
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
    bytecode_add(output, stage)
    size = output.stat().st_size
    if size >= MAX_PACKAGE_BYTES:
        raise PackageError(f"{output} is {size} bytes; the limit is {MAX_PACKAGE_BYTES}")
    return output


def stage_runtime(settings: dict[str, Any], stage: str) -> str | None:
    """The stage's ``runtime``, inherited through ``extends`` as Zappa inherits it."""
    seen: set[str] = set()
    while stage not in seen:
        seen.add(stage)
        if "runtime" in settings[stage]:
            return str(settings[stage]["runtime"])
        if "extends" not in settings[stage]:
            return None
        stage = settings[stage]["extends"]
    return None


def bytecode_add(package: Path, stage: str) -> int:
    """Add to ``package`` the bytecode of each of its modules, for the stage's runtime:
    how many modules were compiled (one that does not compile is left as source)."""
    runtime = stage_runtime(json.loads((ROOT / "zappa_settings.json").read_text()), stage)
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != ours:
        raise PackageError(f"the stage runs {runtime}; its bytecode cannot be built by {ours}")
    with tempfile.TemporaryDirectory(prefix="skymarshal-bytecode-") as work:
        root = Path(work)
        with zipfile.ZipFile(package) as archive:
            sources = [name for name in archive.namelist() if name.endswith(".py")]
            for name in sources:
                archive.extract(name, root)
        # Each pyc beside its source, named as the runtime looks for it (whatever this
        # process's PYTHONPYCACHEPREFIX), its traceback paths those of /var/task.
        jobs = [(root, name) for name in sources]
        with ProcessPoolExecutor() as pool:
            list(pool.map(_compile, jobs, chunksize=64))
        compiled = sorted(root.rglob("*.pyc"))
        with zipfile.ZipFile(package, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in compiled:
                archive.write(path, path.relative_to(root).as_posix())
    return len(compiled)


def _compile(job: tuple[Path, str]) -> None:
    root, name = job
    folder, _, module = name.rpartition("/")
    cfile = root / folder / "__pycache__" / f"{module[:-3]}.{sys.implementation.cache_tag}.pyc"
    # A module that is not Python 3.13 (a template, one for another version) stays source.
    with contextlib.suppress(py_compile.PyCompileError):
        py_compile.compile(
            str(root / name),
            cfile=str(cfile),
            dfile=f"/var/task/{name}",
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


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
