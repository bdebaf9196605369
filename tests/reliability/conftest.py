"""The reliability campaign's size and its figures.

``--campaign-size ci`` (the default) fits the CI time limit; ``--campaign-size large`` (or the
environment variable RECONCILER_CAMPAIGN=large) runs five times the operations, kills and faults.
``RECONCILER_CAMPAIGN_REPORT=FILE`` writes the figures as JSON; they are printed at the end too.
``RECONCILER_CAMPAIGN_SEED=N`` draws the campaign (stock, desired states, kill and fault moments)
from another seed than the default 2026, to walk other kill points.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Iterator

import pytest
from campaign import SIZES, Figures, Size


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--campaign-size", choices=sorted(SIZES), default=None,
        help="Size of the reliability campaign (default: $RECONCILER_CAMPAIGN or 'ci').",
    )


_FIGURES: list[Figures] = []


@pytest.fixture(scope="session")
def size(request: pytest.FixtureRequest) -> Size:
    name = request.config.getoption("--campaign-size") or os.environ.get("RECONCILER_CAMPAIGN") or "ci"
    if name not in SIZES:
        raise pytest.UsageError(f"RECONCILER_CAMPAIGN={name!r}: use one of {', '.join(sorted(SIZES))}")
    seed = os.environ.get("RECONCILER_CAMPAIGN_SEED", "").strip()
    if not seed:
        return SIZES[name]
    if not seed.isdigit():
        raise pytest.UsageError(f"RECONCILER_CAMPAIGN_SEED={seed!r}: give a whole number")
    return replace(SIZES[name], seed=int(seed))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Figures factory; each test's figures join the campaign's totals when it passes or fails."""
    made: list[Figures] = []

    def make(kind: str, test: str) -> Figures:
        fig = Figures(f"{kind}:{test}")
        made.append(fig)
        return fig

    yield make
    _FIGURES.extend(made)


def _row(fig: Figures) -> dict[str, Any]:
    data = asdict(fig)
    data["faults"] = dict(fig.faults)
    return data


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    total = Figures("total")
    for fig in _FIGURES:
        for name, value in asdict(fig).items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(total, name, getattr(total, name) + value)
        total.faults.update(fig.faults)
    rows = [_row(f) for f in _FIGURES] + [_row(total)]
    write = terminalreporter.write_line
    write("")
    write("reliability campaign figures:")
    write(f"  {'campaign':32} {'plans':>5} {'ops':>6} {'runs':>5} {'kills':>5} {'doubt':>5} {'lost':>4} {'doubled':>7} "
          f"{'sold':>5}  faults")
    for r in rows:
        write(f"  {r['kind']:32} {r['plans']:>5} {r['operations']:>6} {r['apply_runs']:>5} {r['kills']:>5} "
              f"{r['in_doubt']:>5} {r['units_lost']:>4} {r['units_doubled']:>7} {r['units_sold']:>5}  {r['faults']}")
    report = os.environ.get("RECONCILER_CAMPAIGN_REPORT")
    if report:
        Path(report).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
