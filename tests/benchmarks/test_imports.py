"""The bench's account of a cold start's imports, from real ``-X importtime`` output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.imports import (
    STANDARD_LIBRARY,
    import_times_parse,
    imports_beyond,
    imports_compared,
    self_time_by_package,
)


def _import_times(tmp_path: Path, statement: str) -> list[str]:
    """stderr of a new interpreter (isolated and without site, as the Lambda child runs) running
    ``statement`` with ``tmp_path`` on its path, under -X importtime."""
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-X",
            "importtime",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {statement}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return completed.stderr.splitlines()


def _packages(tmp_path: Path) -> None:
    alpha = tmp_path / "alpha"
    alpha.mkdir()
    # alpha takes 50 ms at import and imports its submodule, which imports a module of
    # the standard library that a bare interpreter has not imported.
    (alpha / "__init__.py").write_text("import time\nimport alpha.beta\ntime.sleep(0.05)\n")
    (alpha / "beta.py").write_text("import fractions\n")
    (tmp_path / "gamma.py").write_text("VALUE = 1\n")


def test_parse_nesting_and_other_lines(tmp_path: Path) -> None:
    _packages(tmp_path)
    lines = _import_times(tmp_path, "import alpha")
    # The app's own logging shares stderr with -X importtime.
    rows = import_times_parse(['{"level": "INFO", "message": "x"}', *lines, "Instancing.."])
    names = [row.module for row in rows]
    alpha, beta = rows[names.index("alpha")], rows[names.index("alpha.beta")]
    assert names.index("alpha.beta") < names.index("alpha")  # a module after its imports
    assert (alpha.depth, beta.depth) == (0, 1)
    assert rows[names.index("fractions")].depth == 2
    assert alpha.self_us >= 50_000
    # (each figure rounded to the microsecond on its own)
    assert alpha.cumulative_us >= alpha.self_us + beta.cumulative_us - 2
    by_package = self_time_by_package(rows)
    assert by_package["alpha"] == alpha.self_us + beta.self_us
    assert "fractions" not in by_package
    assert by_package[STANDARD_LIBRARY] > 0


def test_compared_ranks_what_only_ours_imports(tmp_path: Path) -> None:
    _packages(tmp_path)
    ours = import_times_parse(_import_times(tmp_path, "import alpha, gamma"))
    minimal = import_times_parse(_import_times(tmp_path, "import gamma"))
    lines = imports_compared(ours, minimal, top=3)
    assert lines[0].startswith("imports to the first response: ours ")
    assert f"in {len(ours)} modules" in lines[0]
    assert f"in {len(minimal)} (" in lines[0]
    alpha_ms = sum(row.self_us for row in ours if row.module.split(".")[0] == "alpha") / 1000
    assert lines[2].split()[:2] == ["alpha", f"{alpha_ms:.1f}"]
    assert lines[2].endswith("(only ours)")
    # Then the standard library's modules together (fractions, decimal, numbers, … that
    # only ours imports; both import some), and gamma when its self time came out above
    # the minimal one's: in either order, neither "(only ours)".
    ranked = {line.split("  ")[2].strip(): line for line in lines[3:]}
    assert "(standard library)" in ranked
    assert set(ranked) <= {"(standard library)", "gamma"}
    assert not any(line.endswith("(only ours)") for line in ranked.values())
    assert len(imports_compared(ours, minimal, top=1)) == 4  # the rest as "N more"
    assert imports_compared(ours, minimal, top=1)[3].split()[1] == "more"


def test_beyond_counts_only_the_modules_the_base_did_not_import(tmp_path: Path) -> None:
    _packages(tmp_path)
    ours = import_times_parse(_import_times(tmp_path, "import alpha, gamma"))
    base = import_times_parse(_import_times(tmp_path, "import gamma"))
    added_us, added = imports_beyond(ours, base)
    new = [row for row in ours if row.module not in {row.module for row in base}]
    assert {"alpha", "alpha.beta", "fractions"} <= {row.module for row in new}
    assert "gamma" not in {row.module for row in new}
    assert added == len(new)
    assert added_us == sum(row.self_us for row in new)
    assert added_us >= 50_000  # alpha's own 50 ms
    assert imports_beyond(base, base) == (0, 0)
