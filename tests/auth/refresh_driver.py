"""A separate process that spends refresh tokens: ``python refresh_driver.py ROOT MODE N``.

- ``loop``: N times, drop the access token and read the target's stock (one refresh, then a
  vendor request with the new access token), as N expiries during a long apply would.
- ``crash``: take a new access token (the refresh commits the rotated refresh token), then die
  at once (``os._exit``), before the new access token is used for anything.

Secrets and RECONCILER_STATE come from the environment, as for the CLI.
"""

from __future__ import annotations

import os
import sys

from reconciler.config import load_project
from reconciler.connectors.base import connector_class


def main(root: str, mode: str, count: int) -> int:
    project = load_project(root)
    ctx = project.target_context("t")
    source = ctx.token_source
    if mode == "crash":
        source.access_token()
        os._exit(9)
    connector = connector_class(ctx.kind)(ctx)
    try:
        for _ in range(count):
            source.expire(source.access_token())
            connector.read_stock()
    finally:
        connector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
