"""What a cold start imports, from ``python -X importtime``: the bench's account of what
remains between the package's first invoke and the minimal DRF app's first request.

``-X importtime`` writes one line per module imported, to stderr, as
``import time: <self us> | <cumulative us> | <two spaces per level><module>``, a module
after the modules it imported. The bench runs each package's cold start (its handler
imported, then its first request) under it and compares the two by top-level package: the
self time of the modules each one imported. Self times under ``-X importtime`` run a little
above a plain import's (it times every import), alike for both.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


@dataclass(frozen=True)
class ImportTime:
    module: str
    self_us: int
    cumulative_us: int
    depth: int  # 0 for a module imported by the process itself, 1 for one it imported, …


def import_times_parse(lines: Iterable[str]) -> list[ImportTime]:
    """The modules of an ``-X importtime`` log, in its order; other lines (the app's own
    logging shares stderr) and the header line are skipped."""
    rows = []
    for line in lines:
        matched = _LINE.match(line.rstrip("\n"))
        if matched is None:
            continue
        self_us, cumulative_us, indent, module = matched.groups()
        rows.append(ImportTime(module, int(self_us), int(cumulative_us), len(indent) // 2))
    return rows


STANDARD_LIBRARY = "(standard library)"
HANDLER = "handler"


def self_time_by_package(rows: Iterable[ImportTime]) -> Counter[str]:
    """Microseconds of self time per top-level package (``a`` of ``a.b.c``), the standard
    library's modules together as STANDARD_LIBRARY."""
    totals: Counter[str] = Counter()
    for row in rows:
        top = row.module.split(".")[0]
        totals[STANDARD_LIBRARY if top in sys.stdlib_module_names else top] += row.self_us
    return totals


def imports_compared(
    ours: list[ImportTime], minimal: list[ImportTime], *, top: int = 12
) -> list[str]:
    """Lines for the bench: both totals, then the top-level packages whose self time is
    most above the minimal app's (what only ours imports, or imports more of)."""
    ours_by, minimal_by = self_time_by_package(ours), self_time_by_package(minimal)
    over = {name: ours_by[name] - minimal_by.get(name, 0) for name in ours_by}
    ranked = sorted(
        ((microseconds, name) for name, microseconds in over.items() if microseconds > 0),
        reverse=True,
    )
    lines = [
        f"imports to the first response: ours {sum(ours_by.values()) / 1000:.0f} ms in "
        f"{len(ours)} modules, the minimal DRF app's {sum(minimal_by.values()) / 1000:.0f} ms "
        f"in {len(minimal)} (self times, -X importtime)",
        f"  over the minimal app's, by top-level package ({sum(us for us, _ in ranked) / 1000:.0f}"
        " ms in all):",
    ]
    lines += [
        f"    {name:<24} {microseconds / 1000:6.1f} ms"
        + ("" if name in minimal_by else "  (only ours)")
        + (_HANDLER_NOTE if name == HANDLER else "")
        for microseconds, name in ranked[:top]
    ]
    rest = ranked[top:]
    if rest:
        lines.append(f"    {f'{len(rest)} more':<24} {sum(us for us, _ in rest) / 1000:6.1f} ms")
    return lines


# Zappa's handler module sets the app up as it is imported (INSTANTIATE_LAMBDA_HANDLER_ON_
# IMPORT): Django's setup, the apps' ready(), the URLconf; its self time is that work.
_HANDLER_NOTE = "  (Zappa's handler: the app's setup run at its import)"


def imports_beyond(rows: list[ImportTime], base: list[ImportTime]) -> tuple[int, int]:
    """Microseconds of self time, and how many modules, of ``rows`` that ``base`` did not
    import."""
    known = {row.module for row in base}
    added = [row for row in rows if row.module not in known]
    return sum(row.self_us for row in added), len(added)
