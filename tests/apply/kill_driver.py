"""Runs one apply in its own process, for the kill and lock-contention tests.

usage: kill_driver.py STATE STOCK PLAN.pickle [--delay S] [--delay-after S] [--verifiable] [--max-batch N]
Exit codes are the CLI's: 0 applied, 3 failures, 4 in doubt, 5 lock held, 1 other errors.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from applykit import connector  # noqa: E402

from reconciler.apply import apply_plan, raise_for_report, render_apply_summary  # noqa: E402
from reconciler.errors import ReconcilerError  # noqa: E402
from reconciler.state import open_state_store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("state")
    parser.add_argument("stock")
    parser.add_argument("plan")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--delay-after", type=float, default=0.0)
    parser.add_argument("--verifiable", action="store_true")
    parser.add_argument("--max-batch", type=int, default=3)
    parser.add_argument("--holder", default="driver@test")
    args = parser.parse_args()
    plan = pickle.loads(Path(args.plan).read_bytes())
    conn = connector(
        "shop", Path(args.stock), delay_s=args.delay, delay_after_s=args.delay_after,
        verifiable=args.verifiable, max_batch=args.max_batch,
    )
    try:
        with open_state_store(args.state) as store:
            report = apply_plan(plan, store, {"shop": conn}, desired_digest=plan.desired_digest, holder=args.holder)
            print(render_apply_summary(report))
            raise_for_report(report)
    except ReconcilerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
