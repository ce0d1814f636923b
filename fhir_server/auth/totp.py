"""Optional second factor for staff accounts: time-based one-time codes (RFC 6238, pyotp).

    GET|POST /auth/totp          enrolment by the signed-in account (practitioner, staff, admin):
                                 a new secret is shown once, as an otpauth:// URI, and is
                                 switched on only when a code from it is entered
    GET|POST /auth/totp/verify   the sign-in step after a right password, for accounts that
                                 have it: the session holds no account until the code is right

A code is good for its 30-second step and one step either side (clock drift), and only
once: the account keeps the last step used, and a code of that step or an earlier one is
refused (Records.use_totp_step, compare-and-set). Wrong codes count towards the same
lockout as wrong passwords (local.py). An administrator can switch the factor off
(DELETE /admin/accounts/{id}/totp). Every form carries the CSRF token.
"""

from __future__ import annotations

import hmac
import re
import time

import pyotp
from flask import current_app, redirect, request, session, url_for
from flask_smorest import Blueprint

from . import local, login
from .models import login_key
from .providers import ProviderError

ROLES = ("practitioner", "staff", "admin")
ISSUER = "fhir-server-ru"
DRIFT_STEPS = 1
SIGN_IN_SECONDS = 300  # between the right password and the code
_CODE = re.compile(r"^\d{6}$")
_HTML = {"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}}

VERIFY_PAGE = (
    login._BASE
    + """<h1>{{ t["totp-title"] }}</h1>
{% if error %}<p class="error" role="alert">{{ t[error] }}</p>{% endif %}
<form method="post" action="{{ url_for('mfa.verify') }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="code">{{ t["totp-prompt"] }}</label>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus>
<button type="submit">{{ t["totp-submit"] }}</button>
</form>
"""
    + login._END
)

ENROL_PAGE = (
    login._BASE
    + """<h1>{{ t["totp-enrol-title"] }}</h1>
{% if error %}<p class="error" role="alert">{{ t[error] }}</p>{% endif %}
{% if enabled %}<p>{{ t["totp-enabled"] }}</p>
{% elif allowed %}
{% if uri %}<p>{{ t["totp-enrol-intro"] }}</p><p><code id="otpauth">{{ uri }}</code></p>{% endif %}
<form method="post" action="{{ url_for('mfa.enrol') }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="code">{{ t["totp-code"] }}</label>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit">{{ t["totp-submit"] }}</button>
</form>
{% endif %}
"""
    + login._END
)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code `code` is (within the drift allowance), or None."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now if now is not None else time.time())
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _code() -> tuple[str | None, str | None]:
    """(code, error key) of the posted form."""
    code = "".join((request.form.get("code") or "").split())
    if not code:
        return None, "totp-missing"
    if not _CODE.match(code):
        return None, "totp-format"
    return code, None


def _service():
    return current_app.extensions["fhir_auth"]


def make_blueprint() -> Blueprint:
    blp = Blueprint("mfa", __name__, description="Second factor of staff accounts: one-time codes (TOTP, RFC 6238)")

    @blp.route("/auth/totp/verify", endpoint="verify", methods=["GET", "POST"])
    @blp.doc(responses=_HTML)
    def verify():
        """Second sign-in step: the one-time code"""
        svc = _service()
        account = svc.records.account(session.get("mfa_account"))
        if account is None or account.disabled or time.time() - session.get("mfa_time", 0) > SIGN_IN_SECONDS:
            session.pop("mfa_account", None)
            session["notice"] = "totp-expired"
            return redirect(url_for("smart.login"))
        if request.method == "GET":
            return login.render(VERIFY_PAGE, error=None)
        if not login.csrf_ok():
            return login.render(VERIFY_PAGE, 400, error="csrf")
        code, error = _code()
        if error:
            return login.render(VERIFY_PAGE, error=error)
        key = login_key(account.login)
        if local.is_locked(svc, key, account):
            return login.render(VERIFY_PAGE, error="account-locked")
        step = matching_step(account.totp_secret, code)
        if step is None:
            try:
                local.failed(svc, key, account)
            except ProviderError as err:
                return login.render(VERIFY_PAGE, error=err.key)
            return login.render(VERIFY_PAGE, error="totp-wrong")
        if not svc.records.use_totp_step(account.id, step):
            return login.render(VERIFY_PAGE, error="totp-reused")
        svc.records.clear_throttle(key)
        pending = login.start_session(account, "local")
        return redirect(pending or url_for("smart.login"))

    @blp.route("/auth/totp", endpoint="enrol", methods=["GET", "POST"])
    @blp.doc(responses=_HTML)
    def enrol():
        """Switch on the second factor (one-time codes) for the signed-in account"""
        svc = _service()
        account = login.current_account(svc)
        if account is None:
            return redirect(url_for("smart.login"))
        if account.role not in ROLES:
            return login.render(ENROL_PAGE, 403, error="totp-not-allowed", enabled=False, allowed=False, uri=None)
        if account.totp_enabled:
            return login.render(ENROL_PAGE, enabled=True, allowed=True, uri=None, error=None)
        if request.method == "GET":
            # A new secret on every visit: the one shown is never shown again.
            secret = pyotp.random_base32()
            svc.records.set_account_fields(account.id, totp_pending=secret)
            uri = pyotp.TOTP(secret).provisioning_uri(name=account.login, issuer_name=ISSUER)
            return login.render(ENROL_PAGE, enabled=False, allowed=True, uri=uri, error=None)
        if not login.csrf_ok():
            return login.render(ENROL_PAGE, 400, error="csrf", enabled=False, allowed=True, uri=None)
        code, error = _code()
        step = matching_step(account.totp_pending, code) if code and account.totp_pending else None
        if error or step is None:
            return login.render(ENROL_PAGE, error=error or "totp-wrong", enabled=False, allowed=True, uri=None)
        svc.records.set_account_fields(account.id, totp_secret=account.totp_pending, totp_pending=None, totp_last_step=step)
        return login.render(ENROL_PAGE, enabled=True, allowed=True, uri=None, error=None)

    return blp
