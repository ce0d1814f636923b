"""Sign-in of local accounts: the form's fields, the password, and the lockout.

* Which field is wrong is said for the form itself (a missing login or password, a login
  that is neither an e-mail address nor a phone number). A wrong password and an unknown
  login get the same answer, cost the same (an unknown login is verified against a dummy
  Argon2id hash) and count towards the same lockout: a throttle record per login, for
  logins that have an account and logins that do not.
* MAX_FAILURES wrong passwords (or one-time codes, totp.py) in a row lock the login for
  FHIR_AUTH_LOCKOUT_SECONDS; while locked, even the right password is refused. The lock
  and its end are AuditEvents (account_audit.py) for logins that have an account.
* Nothing typed is logged.
"""

from __future__ import annotations

import logging

from . import account_audit, hashing
from .models import LoginFormatError, aware, check_login, login_key, utcnow
from .providers import ProviderError

log = logging.getLogger("fhir_server.auth")

MAX_FAILURES = 3


def read_form(form) -> tuple[str, str]:
    """(normalised login, password) of the sign-in form; ProviderError naming the field."""
    login = (form.get("login") or "").strip()
    password = form.get("password") or ""
    if not login and not password:
        raise ProviderError("missing-credentials")
    if not login:
        raise ProviderError("missing-login")
    if not password:
        raise ProviderError("missing-password")
    try:
        return check_login(login), password
    except LoginFormatError:
        raise ProviderError("login-invalid") from None


def is_locked(service, key: str, account) -> bool:
    """Whether the login is locked now; a lock whose time is over is lifted (and audited)."""
    records = service.records
    throttle = records.throttle(key)
    if throttle is None or throttle.locked_until is None:
        return False
    if aware(throttle.locked_until) > utcnow():
        return True
    if records.clear_throttle(key) and account is not None:
        account_audit.record(service, "unlock", account.id)
        log.info("account %s: sign-in lock is over", account.id)
    return False


def failed(service, key: str, account) -> None:
    """Count a wrong password or code; raises account-locked when this one locks the login."""
    _, until = service.records.add_failure(key, MAX_FAILURES, service.settings.auth_lockout_seconds)
    if until is not None:
        if account is not None:
            account_audit.record(service, "lock", account.id, until=until)
            log.info("account %s: sign-in locked after %d wrong attempts", account.id, MAX_FAILURES)
        raise ProviderError("account-locked")


def authenticate(service, form):
    """The account whose login and password the form carries; ProviderError otherwise."""
    login, password = read_form(form)
    records = service.records
    key = login_key(login)
    account = records.account_by_login(login)
    locked = is_locked(service, key, account)
    # Always one Argon2id verification, so neither a lock nor an unknown login shows in the timing.
    ok = hashing.verify_secret(account.password_hash if account else None, password) and account is not None
    if locked:
        raise ProviderError("account-locked")
    if not ok:
        failed(service, key, account)
        log.info("sign-in refused: wrong login or password")
        raise ProviderError("bad-credentials")
    records.clear_throttle(key)
    if account.disabled:
        log.info("sign-in refused: account %s is disabled", account.id)
        raise ProviderError("account-disabled")
    if hashing.needs_rehash(account.password_hash):
        records.set_password_hash(account.id, hashing.hash_secret(password))
    return account


def unlock(service, account, by: str) -> bool:
    """An administrator lifts the lock of an account; audited. False when it was not locked."""
    if not service.records.clear_throttle(login_key(account.login)):
        return False
    account_audit.record(service, "admin-unlock", account.id, by=by)
    return True
