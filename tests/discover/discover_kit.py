"""Shared pieces of the discover tests: sandboxes on loopback and small repositories."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

XS_TOKEN_ENV = "TEST_XS_TOKEN"
ZETTLE_TOKEN_ENV = "TEST_ZETTLE_TOKEN"


def uid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


OSLO, BERGEN = uid("outlet", "oslo"), uid("outlet", "bergen")


def xs_fixtures(filler: int = 0) -> dict[str, Any]:
    """Two outlets; a family of two variants; a duplicated SKU; a product with barcodes; one
    renamed, one to be deleted; ``filler`` more products (to page past one page)."""
    items = [
        {"id": uid("p", "tee"), "name": "Tee", "sku": "TEE"},
        {"id": uid("p", "tee-s"), "name": "Tee S", "sku": "TEE-S", "variant_parent_id": uid("p", "tee")},
        {"id": uid("p", "tee-m"), "name": "Tee M", "sku": "TEE-M", "variant_parent_id": uid("p", "tee"),
         "barcodes": ["7310000000017"]},
        {"id": uid("p", "dup-1"), "name": "Mug blue", "sku": "MUG"},
        {"id": uid("p", "dup-2"), "name": "Mug red", "sku": "MUG"},
        {"id": uid("p", "cap"), "name": "Cap", "sku": "CAP-NEW"},  # the catalogue maps it as CAP: renamed
        {"id": uid("p", "gone"), "name": "Gone", "sku": "GONE"},
    ]
    items += [{"id": uid("p", "fill", i), "name": f"Filler {i}", "sku": f"FILL-{i:05d}"} for i in range(filler)]
    stock = [{"location": OSLO, "item": uid("p", "tee-s"), "quantity": 4},
             {"location": BERGEN, "item": uid("p", "tee-m"), "quantity": 7}]
    return {"locations": [{"id": OSLO, "name": "Oslo"}, {"id": BERGEN, "name": "Bergen"}], "items": items, "stock": stock}


CATALOG = """\
# The catalogue: canonical SKUs (a comment discover must keep)
items:
  TEE-S:
    name: Tee S            # trailing comment
  TEE-M:
    name: Tee M
  MUG:
    name: Mug
  CAP:
    name: Cap
    ids:
      xs: "{cap}"          # mapped before the SKU was renamed
  GONE:
    ids:
      xs: "{gone}"
  NOWHERE: {{}}
"""


def write_xs_repo(root: Path, url: str, *, map_outlets: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stock").mkdir(exist_ok=True)
    locations = f'\n      oslo: "{OSLO}"\n      bergen: "{BERGEN}"' if map_outlets else " {}"
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        # My shop (this comment must survive discover --write)
        version: 1
        locations:
          oslo: {{description: "Oslo"}}     # the flagship
          bergen: {{}}
        targets:
          xs:
            kind: xseries
            url: {url}
            credentials_env: {XS_TOKEN_ENV}
            locations:""") + locations + "\n")
    (root / "stock" / "catalog.yaml").write_text(CATALOG.format(cap=uid("p", "cap"), gone=uid("p", "gone")))
    return root
