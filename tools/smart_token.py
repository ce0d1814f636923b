#!/usr/bin/env python3
"""Get a SMART access token from a running server the way a browser and an app would:
sign-in form -> authorize (PKCE S256) -> consent form -> code -> token. Standard library only.

    python3 tools/smart_token.py --server http://127.0.0.1:8080 \\
        --login doctor@demo.example --password "$FHIR_DEMO_PASSWORD" --scope "openid fhirUser user/*.rs"

prints the token response (JSON) on stdout; with --access-token only the access token, for
`curl -H "Authorization: Bearer $(...)"`. The default client is the demo public client;
give --client-secret for a confidential one. Nothing is listening at the redirect URI:
the script reads the code from the redirect itself, as a native app would.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # hand every 3xx back to the caller


class Browser:
    def __init__(self, server: str):
        self.server = server.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect())

    def call(self, method: str, url: str, form: dict | None = None, headers: dict | None = None) -> tuple[int, dict, str]:
        if url.startswith("/"):
            url = self.server + url
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    if not m:
        raise SystemExit("no CSRF token on the page: " + html[:300])
    return m.group(1)


def _location(status: int, headers: dict, body: str, step: str) -> str:
    if status not in (302, 303) or "Location" not in headers:
        raise SystemExit(f"{step}: expected a redirect, got HTTP {status}: {body[:500]}")
    return headers["Location"]


def get_token(server: str, login: str, password: str, scope: str, client_id: str, redirect_uri: str,
              client_secret: str | None = None, aud: str | None = None, patient: str | None = None) -> dict:
    b = Browser(server)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    authorize = "/auth/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope, "state": state,
        "aud": aud or f"{b.server}/fhir", "code_challenge": challenge, "code_challenge_method": "S256",
    })
    status, headers, body = b.call("GET", authorize)
    if status in (302, 303):  # not signed in yet: the sign-in form, then back to authorize
        _location(status, headers, body, "authorize")
        _, _, page = b.call("GET", "/auth/login")
        status, headers, body = b.call("POST", "/auth/login", {"login": login, "password": password, "csrf": _csrf(page)})
        _location(status, headers, body, "sign-in")
        status, headers, body = b.call("GET", authorize)
    if status != 200:
        raise SystemExit(f"authorize: HTTP {status}: {body[:500]}")
    form = {"csrf": _csrf(body), "decision": "approve"}
    if patient:
        form["patient"] = patient
    status, headers, body = b.call("POST", authorize, form)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(_location(status, headers, body, "consent")).query))
    if query.get("state") != state or "code" not in query:
        raise SystemExit(f"authorize refused: {query}")
    exchange = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": redirect_uri,
                "client_id": client_id, "code_verifier": verifier}
    auth = {}
    if client_secret:
        auth["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    status, _, body = b.call("POST", "/auth/token", exchange, auth)
    if status != 200:
        raise SystemExit(f"token: HTTP {status}: {body[:500]}")
    return json.loads(body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="http://127.0.0.1:8080", help="server root (the FHIR base is <server>/fhir)")
    p.add_argument("--login", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--scope", default="openid fhirUser user/*.rs")
    p.add_argument("--client-id", default="demo-public-app")
    p.add_argument("--client-secret", default=None)
    p.add_argument("--redirect-uri", default="http://127.0.0.1:8000/callback")
    p.add_argument("--patient", default=None, help="launch patient chosen on the consent page (launch/patient)")
    p.add_argument("--access-token", action="store_true", help="print only the access token")
    a = p.parse_args(argv)
    token = get_token(a.server, a.login, a.password, a.scope, a.client_id, a.redirect_uri, a.client_secret, patient=a.patient)
    print(token["access_token"] if a.access_token else json.dumps(token, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
