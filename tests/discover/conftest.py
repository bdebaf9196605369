from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))  # cli_kit.run_cli: main() with exit codes
sys.path.insert(0, str(Path(__file__).parent.parent / "gitops"))  # gitops_kit: git, the state script as CI runs it
