"""Target checks only a kind knows (reconciler/config/_target_checks.py), through `reconciler
validate` as a user runs it: the pasted Ka-ching URL, ids Ka-ching cannot store, and the supplier
feed's read_api option. Every problem names reconciler.yaml or the catalog with its line."""

from __future__ import annotations

from click.testing import CliRunner
from config_helpers import BASE_CATALOG, BASE_CONFIG, RepoFactory

from reconciler.cli import _register, cli
from reconciler.config import load_project

APIKEY = "kc-pasted-secret-9f8e7d"
PASTED = "https://us-central1-ka-ching-base.cloudfunctions.net/imports/stock?account=acc-1&integration=queue-7"


def kaching_config(url: str, options: str = "") -> str:
    return BASE_CONFIG + (
        f"  kc:\n    kind: kaching\n    url: {url}\n    credentials_env: KC_KEY\n"
        f"    locations: {{oslo: \"cph-main\"}}\n{options}"
    )


def validate(root: object) -> tuple[int, list[str]]:
    _register()
    result = CliRunner().invoke(cli, ["-C", str(root), "validate"])
    return result.exit_code, result.output.splitlines()


def test_the_pasted_back_office_url_is_accepted_with_its_query(config_repo: RepoFactory) -> None:
    root = config_repo({"reconciler.yaml": kaching_config(PASTED + "&lang=da")})
    assert validate(root)[0] == 0
    ctx = load_project(root).target_context("kc", env={"KC_KEY": APIKEY})
    assert ctx.base_url == PASTED + "&lang=da" and ctx.options == {}


def test_a_url_holding_the_apikey_is_a_validate_error_that_never_shows_the_key(config_repo: RepoFactory) -> None:
    url = ("https://us-central1-ka-ching-base.cloudfunctions.net/imports/stock?account=acc-1"
           f"&apikey={APIKEY}&integration=queue-7")
    code, lines = validate(config_repo({"reconciler.yaml": kaching_config(url)}))
    assert code == 1
    assert lines[0].startswith("reconciler.yaml:18: the url of target 'kc' (kaching): it holds the apikey, a secret")
    assert "environment variable named by credentials_env" in lines[0]
    assert not any(APIKEY in line for line in lines)


def test_an_apikey_under_options_is_refused_too(config_repo: RepoFactory) -> None:
    config = kaching_config(PASTED, f"    options: {{apikey: {APIKEY}}}\n")
    code, lines = validate(config_repo({"reconciler.yaml": config}))
    assert code == 1
    assert lines[0].startswith("reconciler.yaml:21: options of target 'kc' (kaching) hold the apikey, a secret")
    assert not any(APIKEY in line for line in lines)


def test_other_queues_adjustment_and_conflicting_ids_are_located(config_repo: RepoFactory) -> None:
    products = PASTED.replace("/imports/stock", "/imports/products") + "&adjustment=true"
    code, lines = validate(config_repo({"reconciler.yaml": kaching_config(
        products, "    options: {account: other-acc}\n")}))
    assert code == 1
    assert [line.split(". ")[0] for line in lines[:-1]] == [
        "reconciler.yaml:18: the url of target 'kc' (kaching): it is the URL of the 'products' import queue; "
        "paste the stock import URL (its path ends in /imports/stock)",
        "reconciler.yaml:18: the url of target 'kc' (kaching): it holds adjustment=...; delete it: reconciler adds "
        "adjustment=true to delta imports itself",
        "reconciler.yaml:21: target 'kc' (kaching): options.account (other-acc) differs from account in the url "
        "(acc-1)",
    ]


def test_ids_ka_ching_cannot_store_are_validate_errors_with_file_and_line(config_repo: RepoFactory) -> None:
    config = kaching_config(PASTED).replace('{oslo: "cph-main"}', '{oslo: "cph.main"}')
    catalog = BASE_CATALOG + '      kc: {product: "tee/red", variant: "s"}\n  CAP:\n    ids:\n      kc: "cap#1"\n'
    code, lines = validate(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": catalog}))
    assert code == 1
    assert lines[:-1] == [
        "reconciler.yaml:20: target 'kc' (kaching): the stock location id 'cph.main' of 'oslo' holds ., which "
        "Ka-ching cannot store in an id. Use the location's id as Ka-ching shows it (no . / # $ * [ ]).",
        "stock/catalog.yaml:9: the id of 'BLUE-L' in target 'kc' must be ids without any of . / # $ * [ ] (Ka-ching "
        "cannot store them) (kaching ids), not a mapping. Fix the id; see 'Item ids by "
        "kind' in docs/configuration.md.",
        "stock/catalog.yaml:12: the id of 'CAP' in target 'kc' must be ids without any of . / # $ * [ ] (Ka-ching "
        "cannot store them) (kaching ids), not the text 'cap#1'. Fix the id; see 'Item ids by kind' in docs/configuration.md.",
    ]


def test_supplier_read_api_takes_none_or_assumed(config_repo: RepoFactory) -> None:
    target = ("  ls:\n    kind: lightspeed-supplier\n    url: http://127.0.0.1:8702\n    credentials_env: LS_TOKEN\n"
              "    locations: {oslo: \"wh\"}\n    options: {read_api: %s}\n")
    assert validate(config_repo({"reconciler.yaml": BASE_CONFIG + target % "assumed"}))[0] == 0
    code, lines = validate(config_repo({"reconciler.yaml": BASE_CONFIG + target % "always"}))
    assert code == 1
    assert lines[0] == ("reconciler.yaml:21: options.read_api of target 'ls' (lightspeed-supplier) must be none or "
                        "assumed, not 'always'. Leave it out (write-only: the documented API) or write `read_api: assumed` "
                        "to use the unverified read path (docs/connectors/lightspeed-supplier.md).")


def test_a_run_free_width_may_be_empty_but_sku_and_size_may_not(config_repo: RepoFactory) -> None:
    config = BASE_CONFIG + ("  rf:\n    kind: runfree\n    url: http://127.0.0.1:8705\n    credentials_env: RF_TOKEN\n"
                            "    locations: {oslo: \"3\"}\n")
    good = BASE_CATALOG + '      rf: {sku: TEE, size: M, width: ""}\n'
    assert validate(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": good}))[0] == 0
    ctx = load_project(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": good})).target_context(
        "rf", env={"RF_TOKEN": "t"})
    assert ctx.item_ids["BLUE-L"] == {"sku": "TEE", "size": "M", "width": ""}
    bad = BASE_CATALOG + '      rf: {sku: TEE, size: "", width: ""}\n'
    code, lines = validate(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": bad}))
    assert code == 1 and lines[0].startswith("stock/catalog.yaml:9: the id of 'BLUE-L' in target 'rf' must be")
