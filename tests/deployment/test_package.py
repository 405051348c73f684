"""What `zappa package dev` puts in the zip: runtime code only and its bytecode, under
40 MiB, the pinned botocore with the AgentCore models, and compiled code that the Lambda
python3.13 runtime (Amazon Linux 2023, x86_64, glibc 2.34) can load."""

from __future__ import annotations

import importlib.util
import json
import marshal
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.package import MAX_PACKAGE_BYTES, package_build
from scripts.package_prune import BOTOCORE_SERVICES_KEPT
from scripts.stack import ROOT

# Lambda's python3.13 runtime runs on Amazon Linux 2023.
LAMBDA_GLIBC = (2, 34)
_ELF_X86_64 = 62


def _names(package: Path) -> list[str]:
    with zipfile.ZipFile(package) as archive:
        return archive.namelist()


def _pin(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_the_package_is_under_40_mib(lambda_package: Path) -> None:
    assert lambda_package.stat().st_size < MAX_PACKAGE_BYTES == 40 * 1024 * 1024


def test_every_module_of_the_package_carries_its_unchecked_bytecode(lambda_package: Path) -> None:
    """/var/task is read-only on Lambda: bytecode not in the package is compiled by every
    new environment. Each module has its python3.13 pyc, hash-based and unchecked (PEP 552
    flags 0b01), compiled from that very source."""
    with zipfile.ZipFile(lambda_package) as archive:
        names = set(archive.namelist())
        sources = sorted(name for name in names if name.endswith(".py"))
        assert len(sources) > 1000
        missing = []
        for source in sources:
            folder, _, module = source.rpartition("/")
            pyc = f"{folder}/__pycache__/{module[:-3]}.cpython-313.pyc".lstrip("/")
            if pyc not in names:
                missing.append(source)
                continue
            header = archive.read(pyc)[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, pyc
            assert int.from_bytes(header[4:8], "little") == 0b01, pyc
            assert header[8:16] == importlib.util.source_hash(archive.read(source)), pyc
    # Only modules that are not Python 3.13 (none in this package) may lack it.
    assert missing == []


def test_the_package_holds_the_handler_and_the_apps_and_nothing_else_of_the_project(
    lambda_package: Path,
) -> None:
    names = set(_names(lambda_package))
    for required in (
        "handler.py",
        "zappa_settings.py",
        "skymarshal_api/settings.py",
        "skymarshal_api/wsgi.py",
        "sessions/models.py",
        "invocations/runtime_client.py",
        "invocations/webhooks.py",
        "health/checks.py",
        "standardwebhooks/webhooks.py",  # signs run webhooks
        "zappa/handler.py",
        "django/__init__.py",
        "boto3/__init__.py",
        "botocore/__init__.py",
    ):
        assert required in names, required
    tops = {name.split("/")[0] for name in names}
    not_runtime = {
        "tests", "clients", "local_runtime", "benchmarks", "scripts", "infrastructure",
        "node_modules",
        ".local", ".venv", ".venv-lambda", "manage.py", "README.md", "pyproject.toml",
        "zappa_settings.json", "requirements.lock",
        # development tools and Zappa's own packaging tooling
        "pytest", "_pytest", "hypothesis", "mypy", "ruff", "bandit", "cfnlint", "gunicorn",
        "pip", "setuptools", "wheel", "troposphere", "placebo", "tqdm", "cfn_flip",
    }  # fmt: skip
    assert not tops & not_runtime
    assert not [name for name in names if name.endswith(".po")]
    # Bytecode only as the pyc of a module the package holds (see the bytecode test).
    assert not [name for name in names if name.endswith(".pyc") and _source(name) not in names]
    assert not [name for name in names if "__pycache__" in name and not name.endswith(".pyc")]


def _code(pyc: bytes) -> object:
    """The code object of a pyc this build compiled (after its 16-byte header)."""
    return marshal.loads(pyc[16:])  # noqa: S302 (our own build's bytecode, not input)


def _source(pyc: str) -> str:
    """``a/__pycache__/b.cpython-313.pyc`` is the bytecode of ``a/b.py``."""
    folder, _, name = pyc.rpartition("__pycache__/")
    return f"{folder}{name.split('.')[0]}.py"


def _run_in_package(package_dir: Path, code: str) -> str:
    """Run ``code`` in an interpreter that sees the package and the standard library only."""
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(package_dir)!r})\n{code}",
        ],
        cwd=package_dir,
        env={
            "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEPACKAGE00",
            "AWS_SECRET_ACCESS_KEY": "example",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_packaged_botocore_is_the_pinned_one_and_knows_agentcore(
    lambda_package_dir: Path,
) -> None:
    output = _run_in_package(
        lambda_package_dir,
        """
import json, boto3, botocore, botocore.session
from bedrock_agentcore.runtime import AgentCoreRuntimeClient
import zappa.asynchronous  # makes its Lambda, SNS, STS and DynamoDB clients on import
session = botocore.session.get_session()
models = {
    name: sorted(session.get_service_model(name).operation_names)
    for name in ("bedrock-agentcore", "bedrock-agentcore-control", "dynamodb", "sts")
}
url, headers = AgentCoreRuntimeClient("us-east-1").generate_ws_connection(
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/skymarshal_dev-EXAMPLE123",
    session_id="0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b-and-more-characters",
)
print(json.dumps({
    "botocore": botocore.__version__, "boto3": boto3.__version__,
    "botocore_file": botocore.__file__, "models": models,
    "available": session.get_available_services(), "url": url,
    "signed": "Authorization" in headers or "authorization" in headers,
}))
""",
    )
    found = json.loads(output)
    assert found["botocore"] == _pin("botocore")
    assert found["boto3"] == _pin("boto3")
    assert found["botocore_file"].startswith(str(lambda_package_dir))
    assert "InvokeAgentRuntime" in found["models"]["bedrock-agentcore"]
    assert "GetAgentRuntime" in found["models"]["bedrock-agentcore-control"]
    assert {"Query", "TransactWriteItems", "DescribeTable"} <= set(found["models"]["dynamodb"])
    # Only the models the API uses are shipped (scripts/package_prune.py).
    assert set(found["available"]) == BOTOCORE_SERVICES_KEPT
    assert found["url"].startswith("wss://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/")
    assert found["signed"]


def _wheel_tags(package: Path) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    with zipfile.ZipFile(package) as archive:
        for name in archive.namelist():
            if name.endswith(".dist-info/WHEEL"):
                text = archive.read(name).decode()
                tags[name.split("/")[0]] = re.findall(r"^Tag: (\S+)$", text, re.M)
    return tags


def test_every_wheel_is_pure_or_manylinux_x86_64_for_the_lambda_glibc(
    lambda_package: Path,
) -> None:
    tags = _wheel_tags(lambda_package)
    assert len(tags) > 20
    compiled = 0
    for dist, dist_tags in tags.items():
        platforms = {tag.rsplit("-", 1)[-1] for tag in dist_tags}
        if platforms == {"any"}:
            continue
        compiled += 1
        loadable = False
        for platform in platforms:
            match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
            legacy = {"manylinux2014_x86_64": (2, 17), "manylinux2010_x86_64": (2, 12),
                      "manylinux1_x86_64": (2, 5)}  # fmt: skip
            glibc = (int(match[1]), int(match[2])) if match else legacy.get(platform)
            loadable = loadable or (glibc is not None and glibc <= LAMBDA_GLIBC)
        assert loadable, f"{dist}: {sorted(platforms)}"
    assert compiled >= 4  # cryptography, pydantic-core, cffi, rpds-py, pyyaml, …


def test_every_shared_object_is_x86_64_elf(lambda_package: Path) -> None:
    with zipfile.ZipFile(lambda_package) as archive:
        objects = [name for name in archive.namelist() if re.search(r"\.so(\.|$)", name)]
        assert objects
        for name in objects:
            header = archive.open(name).read(20)
            assert header[:4] == b"\x7fELF", name
            assert int.from_bytes(header[18:20], "little") == _ELF_X86_64, name


@pytest.mark.slow
def test_the_prod_package_is_the_tested_dev_package_but_for_its_settings(
    lambda_package: Path, tmp_path: Path
) -> None:
    """What prod deploys is the code these tests ran: only the baked-in stage settings and
    Zappa's build stamp differ."""
    prod = package_build("prod", tmp_path / "skymarshal-api-prod.zip")

    def contents(package: Path) -> dict[str, int]:
        with zipfile.ZipFile(package) as archive:
            return {entry.filename: entry.CRC for entry in archive.infolist()}

    dev_files, prod_files = contents(lambda_package), contents(prod)
    assert dev_files.keys() == prod_files.keys()
    differing = {name for name in dev_files if dev_files[name] != prod_files[name]}
    # marshal's output depends on reference counts, so two builds of one module's bytecode
    # may differ in bytes: theirs must be the same code.
    with zipfile.ZipFile(lambda_package) as dev_archive, zipfile.ZipFile(prod) as archive:
        differing -= {
            name
            for name in differing
            if name.endswith(".pyc") and _code(dev_archive.read(name)) == _code(archive.read(name))
        }
        settings = archive.read("zappa_settings.py").decode()
    assert differing == {
        "zappa_settings.py",
        f"__pycache__/zappa_settings.{sys.implementation.cache_tag}.pyc",
        "package_info.json",
    }
    assert "'SESSION_TABLE_NAME': 'skymarshal-sessions-prod'" in settings
    assert "API_STAGE='prod'" in settings
