"""State tests reuse the plan builders of the apply tests and the PostgreSQL test server."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "apply"))
sys.path.insert(0, str(Path(__file__).parent.parent))

from pg_server import pg_schema_url, pg_url, state_url  # noqa: E402,F401  (fixtures)
