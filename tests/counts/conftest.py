"""The counts tests reuse the reliability campaign's shop (a real sandbox process and the CLI)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pg_server import pg_schema_url, pg_url, state_url  # noqa: E402,F401  (fixtures: SQLite and PostgreSQL)
