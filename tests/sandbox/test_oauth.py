"""The sandboxes' token endpoints (reconciler/sandbox/_oauth.py) refuse wrong clients the way
the vendors document: raw HTTP, no reconciler client in between."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Iterator

import httpx
import pytest

from reconciler.sandbox import ServerThread, simulator_class
from reconciler.sandbox._oauth import CLIENT_ID, CLIENT_SECRET, JWT_BEARER, OAuthServer, oauth_server


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[OAuthServer, httpx.Client]]:
    sim = simulator_class(request.param)()
    with ServerThread(sim) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield oauth_server(sim), client
    sim.close()


def _post(client: httpx.Client, path: str, form: dict[str, str], **kw: object) -> httpx.Response:
    return client.post(path, data=form, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("served", ["xseries"], indirect=True)
def test_xseries_refresh_rotates_and_the_old_token_is_refused(served: tuple[OAuthServer, httpx.Client]) -> None:
    oauth, client = served
    first = oauth.grant_refresh_token()
    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    answer = _post(client, "/api/1.0/token", {**form, "refresh_token": first})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires", "expires_in", "refresh_token", "domain_prefix"}
    assert body["refresh_token"] != first
    again = _post(client, "/api/1.0/token", {**form, "refresh_token": first})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    wrong = _post(client, "/api/1.0/token", {**form, "client_secret": "nope", "refresh_token": body["refresh_token"]})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    # the access token opens the vendor API; the sandbox's static token still does too
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/2.0/outlets", headers=headers).status_code == 200
    oauth.expire_access()
    expired = client.get("/api/2.0/outlets", headers=headers)
    assert expired.status_code == 401 and "invalid_token" in expired.headers["www-authenticate"]


@pytest.mark.parametrize("served", ["lightspeed-supplier"], indirect=True)
def test_supplier_wants_basic_client_auth_and_pkce(served: tuple[OAuthServer, httpx.Client]) -> None:
    oauth, client = served
    token = oauth.grant_refresh_token()
    in_body = _post(client, "/oauth/token", {"grant_type": "refresh_token", "refresh_token": token,
                                             "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert in_body.status_code == 401 and in_body.json()["error"] == "invalid_client"
    ok = _post(client, "/oauth/token", {"grant_type": "refresh_token", "refresh_token": token}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert ok.status_code == 200 and ok.json()["scope"] == "openid profile offline_access"
    assert _post(client, "/oauth/token", {"grant_type": "password"}, auth=(CLIENT_ID, CLIENT_SECRET)).json()["error"] == \
        "unsupported_grant_type"
    as_json = client.post("/oauth/token", json={"grant_type": "refresh_token"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"

    redirect = "http://127.0.0.1:1/callback"
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect, "state": "s" * 24}
    no_pkce = client.get("/authorize", params=query)
    assert no_pkce.status_code == 302 and "error=invalid_request" in no_pkce.headers["location"]
    short = client.get("/authorize", params={**query, "state": "short"})
    assert "error=invalid_request" in short.headers["location"]
    remote = client.get("/authorize", params={**query, "redirect_uri": "https://evil.example/cb"})
    assert remote.status_code == 400
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    consented = client.get("/authorize", params={**query, "code_challenge": challenge, "code_challenge_method": "S256"})
    code = dict(httpx.URL(consented.headers["location"]).params)["code"]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    bad_verifier = _post(client, "/oauth/token", {**exchange, "code_verifier": "x" * 64}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert bad_verifier.json() == {"error": "invalid_grant", "error_description": "code_verifier does not match the code_challenge"}
    # the code was spent by the failed try: single use
    again = _post(client, "/oauth/token", {**exchange, "code_verifier": verifier}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("served", ["lightspeed-supplier"], indirect=True)
def test_supplier_without_rotation_keeps_the_refresh_token(served: tuple[OAuthServer, httpx.Client]) -> None:
    oauth, client = served
    oauth.switches.rotate = False
    token = oauth.grant_refresh_token()
    for _ in range(2):
        answer = _post(client, "/oauth/token", {"grant_type": "refresh_token", "refresh_token": token}, auth=(CLIENT_ID, CLIENT_SECRET))
        assert answer.status_code == 200 and "refresh_token" not in answer.json()
    oauth.revoke(token)
    revoked = _post(client, "/oauth/token", {"grant_type": "refresh_token", "refresh_token": token}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert revoked.json() == {"error": "invalid_grant", "error_description": "the refresh token was revoked"}


@pytest.mark.parametrize("served", ["zettle"], indirect=True)
def test_zettle_checks_the_assertion_and_its_client_id_claim(served: tuple[OAuthServer, httpx.Client]) -> None:
    oauth, client = served
    key = oauth.api_key(client_id="client-1")
    claims = json.loads(base64.urlsafe_b64decode(key.split(".")[1] + "=="))
    assert claims["client_id"] == "client-1" and claims["scope"] == ["READ:PRODUCT", "WRITE:PRODUCT"]
    form = {"grant_type": JWT_BEARER, "client_id": "client-1", "assertion": key}
    ok = _post(client, "/token", form)
    assert ok.status_code == 200 and set(ok.json()) == {"access_token", "expires_in"} and ok.json()["expires_in"] == 7200
    assert _post(client, "/token/", form).status_code == 200  # oauth.izettle.com/token/ as SwagPayPal calls it
    wrong_client = _post(client, "/token", {**form, "client_id": "client-2"})
    assert wrong_client.status_code == 400 and wrong_client.json()["error"] == "invalid_grant"
    forged = key.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    assert _post(client, "/token", {**form, "assertion": forged}).json() == \
        {"error": "invalid_grant", "error_description": "Invalid assertion JWT"}
    # the key itself is not a bearer token; the access token is
    assert client.get("/organizations/self/locations", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    access = ok.json()["access_token"]
    assert client.get("/organizations/self/locations", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    oauth.expire_access()
    expired = client.get("/organizations/self/locations", headers={"Authorization": f"Bearer {access}"})
    assert expired.status_code == 401 and "ACCESS_TOKEN_EXPIRED" in expired.headers["www-authenticate"]


@pytest.mark.parametrize("served", ["xseries"], indirect=True)
def test_control_path_sets_switches_and_refuses_unknown_ones(served: tuple[OAuthServer, httpx.Client]) -> None:
    oauth, client = served
    assert client.put("/_sandbox/oauth", json={"lifetime_s": 2}).json()["lifetime_s"] == 2
    assert client.put("/_sandbox/oauth", json={"lifetme_s": 2}).status_code == 400
    token = client.post("/_sandbox/oauth/grant", json={"scopes": ["inventory:read"]}).json()["refresh_token"]
    answer = _post(client, "/api/1.0/token", {"grant_type": "refresh_token", "refresh_token": token,
                                              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).json()
    assert answer["expires_in"] == 2
    assert client.get("/_sandbox/oauth/stats").json()["refreshed"] == 1
