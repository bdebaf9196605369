"""The counts tests reuse the reliability campaign's shop (a real sandbox process and the CLI)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
