"""A count sent as an X-Series STOCKTAKE needs consignments:write:inventory_count: a plan whose
OAuth credential lacks it is refused before anything is sent, naming the scope."""

from __future__ import annotations

import pytest

from reconciler.auth._scopes import check_plan_scopes
from reconciler.connectors.base import Secret, TargetContext
from reconciler.connectors.xseries import XSeriesConnector
from reconciler.errors import MissingScopeError
from reconciler.model import OpKind, new_leg, new_operation


class _Granted:
    renewable = False
    def __init__(self, *scopes: str) -> None:
        self.scopes = frozenset(scopes)

    def granted_scopes(self) -> frozenset[str]:
        return self.scopes


def _conn(count_via: str, *scopes: str) -> XSeriesConnector:
    ctx = TargetContext("xs", "xseries", "http://127.0.0.1:9", Secret("t"), {"oslo": "o1"}, {"A": "p1"},
                        options={"count_via": count_via}, token_source=_Granted(*scopes))
    return XSeriesConnector(ctx)


COUNT = new_operation("c1", OpKind.ADJUST, "xs", "A", (new_leg("oslo", 5, 7, 4, -1, 4),),
                      "count oslo-1 at oslo (2026-12-04T09:00:00Z): counted 4, snapshot 5: variance -1", None, None, (), "")


def test_stocktake_count_needs_the_inventory_count_scope() -> None:
    conn = _conn("stocktake", "inventory:read", "inventory:write")
    with pytest.raises(MissingScopeError, match="lacks scope 'consignments:write:inventory_count', needed by 1 count"):
        check_plan_scopes([COUNT], {"xs": conn})
    check_plan_scopes([COUNT], {"xs": _conn("stocktake", "consignments:write:inventory_count")})
    # count_via: adjustment sends a stock adjustment: inventory:write, as for any adjustment
    check_plan_scopes([COUNT], {"xs": _conn("adjustment", "inventory:write")})
    with pytest.raises(MissingScopeError, match="'inventory:write', needed by 1 adjust"):
        check_plan_scopes([COUNT], {"xs": _conn("adjustment", "consignments:write:inventory_count")})
