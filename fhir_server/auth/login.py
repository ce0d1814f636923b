"""The pages a person sees: sign-in, the consent (approval) page, errors.

Russian or English by Accept-Language (Russian when the browser states neither). The
browser session (a signed cookie limited to /auth) holds the signed-in account, the time
of sign-in, the CSRF token of the forms, and the authorization request waiting for the
sign-in. Nothing typed into a form is logged.
"""

from __future__ import annotations

import re
import time

from flask import current_app, render_template_string, request, session, url_for

from consent.scopes import parse_scope

from . import hashing, sessions

LANGS = ("ru", "en")
PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

TEXTS = {
    "en": {
        "title": "Sign in",
        "heading": "Sign in to the medical card",
        "login": "E-mail or phone",
        "password": "Password",
        "submit": "Sign in",
        "or": "Or sign in with",
        "signed-in": "You are signed in as",
        "sign-out": "Sign out",
        "missing-credentials": "Enter your login and password.",
        "bad-credentials": "Wrong login or password.",
        "account-disabled": "This account is disabled.",
        "csrf": "The form has expired. Please try again.",
        "consent-title": "Allow access?",
        "consent-intro": "The application asks for access on your behalf:",
        "granted": "It will be allowed to:",
        "not-granted": "Not allowed (beyond your role or the application's registration):",
        "patient": "Patient id (the patient the application works with; leave empty for none)",
        "bad-patient": "No patient with this id.",
        "approve": "Allow",
        "deny": "Deny",
        "error-title": "The authorization request was refused",
        "account": "Account",
        "missing-login": "Enter your login (e-mail or phone number).",
        "missing-password": "Enter your password.",
        "login-invalid": "The login must be an e-mail address or a phone number.",
        "account-locked": "Too many wrong attempts: sign-in with this login is locked for {minutes} min. Try again later.",
        "session-expired": "Your session has expired. Please sign in again.",
        "session-ended": "You were signed out for your safety (the account's tokens were used from somewhere else). Please sign in again.",
        "totp-title": "One-time code",
        "totp-prompt": "Enter the 6-digit code from your authenticator app.",
        "totp-code": "Code",
        "totp-submit": "Confirm",
        "totp-missing": "Enter the code.",
        "totp-format": "The code is 6 digits.",
        "totp-wrong": "Wrong or expired code.",
        "totp-reused": "This code was used already. Wait for the next one.",
        "totp-expired": "The sign-in took too long. Please sign in again.",
        "totp-enrol-title": "Second factor",
        "totp-enrol-intro": "Add this key to your authenticator app (it is shown only now), then enter the code it shows:",
        "totp-enabled": "The second factor is on for this account.",
        "totp-not-allowed": "A second factor is available for staff accounts only.",
    },
    "ru": {
        "title": "Вход",
        "heading": "Вход в медицинскую карту",
        "login": "Электронная почта или телефон",
        "password": "Пароль",
        "submit": "Войти",
        "or": "Или войдите через",
        "signed-in": "Вы вошли как",
        "sign-out": "Выйти",
        "missing-credentials": "Введите логин и пароль.",
        "bad-credentials": "Неверный логин или пароль.",
        "account-disabled": "Учётная запись заблокирована.",
        "csrf": "Срок действия формы истёк. Попробуйте ещё раз.",
        "consent-title": "Разрешить доступ?",
        "consent-intro": "Приложение запрашивает доступ от вашего имени:",
        "granted": "Ему будет разрешено:",
        "not-granted": "Не будет разрешено (выходит за пределы вашей роли или регистрации приложения):",
        "patient": "Идентификатор пациента (с кем работает приложение; оставьте пустым, если ни с кем)",
        "bad-patient": "Пациента с таким идентификатором нет.",
        "approve": "Разрешить",
        "deny": "Отказать",
        "error-title": "Запрос авторизации отклонён",
        "account": "Учётная запись",
        "missing-login": "Введите логин (электронную почту или номер телефона).",
        "missing-password": "Введите пароль.",
        "login-invalid": "Логин должен быть адресом электронной почты или номером телефона.",
        "account-locked": "Слишком много неудачных попыток: вход с этим логином заблокирован на {minutes} мин. Повторите позже.",
        "session-expired": "Срок действия сеанса истёк. Войдите снова.",
        "session-ended": "Для вашей безопасности выполнен выход (токены учётной записи использованы повторно). Войдите снова.",
        "totp-title": "Одноразовый код",
        "totp-prompt": "Введите 6-значный код из приложения-аутентификатора.",
        "totp-code": "Код",
        "totp-submit": "Подтвердить",
        "totp-missing": "Введите код.",
        "totp-format": "Код состоит из 6 цифр.",
        "totp-wrong": "Неверный или просроченный код.",
        "totp-reused": "Этот код уже использован. Дождитесь следующего.",
        "totp-expired": "Вход занял слишком много времени. Войдите снова.",
        "totp-enrol-title": "Второй фактор",
        "totp-enrol-intro": "Добавьте этот ключ в приложение-аутентификатор (он показывается только сейчас) и введите показанный код:",
        "totp-enabled": "Второй фактор для этой учётной записи включён.",
        "totp-not-allowed": "Второй фактор доступен только для учётных записей сотрудников.",
    },
}

_SCOPE_TEXTS = {
    "openid": ("confirm your identity to the application", "подтверждать вашу личность приложению"),
    "fhirUser": ("know which record in the card is you", "знать, какая запись карты соответствует вам"),
    "profile": ("know which record in the card is you", "знать, какая запись карты соответствует вам"),
    "launch/patient": ("work with one patient's card", "работать с картой одного пациента"),
    "launch": ("be launched from the medical record system", "запускаться из медицинской информационной системы"),
    "launch/encounter": ("work within one encounter", "работать в рамках одного обращения"),
    "offline_access": (
        "keep access after you sign out (until you revoke it)",
        "сохранять доступ после вашего выхода (пока вы его не отзовёте)",
    ),
    "online_access": ("keep access while you are signed in", "сохранять доступ, пока вы в системе"),
}
_PERMS = {
    "c": ("create", "создавать"),
    "r": ("read", "читать"),
    "u": ("update", "изменять"),
    "d": ("delete", "удалять"),
    "s": ("search", "искать"),
}
_CONTEXTS = {
    "patient": ("of the patient", "пациента"),
    "user": ("that you may access", "доступные вам"),
    "system": ("all", "все"),
}

# Gosuslugi (ESIA) sign-in (fhir_server.esia): errors of the callback, and the notice an
# account ESIA does not report as confirmed sees on every page (NOTICES, shown by _BASE).
_ESIA_TEXTS = {
    "en": {
        "esia-state": "The sign-in through Gosuslugi could not be matched to this browser (it was already used or has expired). Please start again.",
        "esia-declined": "You declined to share your data through Gosuslugi, so you are not signed in.",
        "esia-refused": "Gosuslugi refused the sign-in request. Please try again later; if it keeps failing, contact support.",
        "esia-bad-token": "The answer of Gosuslugi failed its security checks, so you are not signed in. Please try again.",
        "esia-bad-person": "The data Gosuslugi gave about you could not be used (for example an invalid SNILS). Please contact support.",
        "esia-ambiguous": "Several records in the medical card match your SNILS. Please contact the clinic's registry to have them merged.",
        "esia-unavailable": "Gosuslugi is not answering at the moment. Please try again in a few minutes.",
        "esia-unavailable-store": "The medical card is not available at the moment. Please try again in a few minutes.",
    },
    "ru": {
        "esia-state": "Не удалось сопоставить вход через Госуслуги с этим браузером (ссылка уже использована или устарела). Начните вход заново.",
        "esia-declined": "Вы отказались предоставить данные через Госуслуги, поэтому вход не выполнен.",
        "esia-refused": "Госуслуги отклонили запрос на вход. Попробуйте позже; если ошибка повторяется, обратитесь в поддержку.",
        "esia-bad-token": "Ответ Госуслуг не прошёл проверку безопасности, поэтому вход не выполнен. Попробуйте ещё раз.",
        "esia-bad-person": "Данные, полученные от Госуслуг, не удалось использовать (например, неверный СНИЛС). Обратитесь в поддержку.",
        "esia-ambiguous": "Вашему СНИЛС соответствует несколько записей медицинской карты. Обратитесь в регистратуру, чтобы их объединили.",
        "esia-unavailable": "Госуслуги сейчас не отвечают. Попробуйте войти через несколько минут.",
        "esia-unavailable-store": "Медицинская карта сейчас недоступна. Попробуйте через несколько минут.",
    },
}
for _language, _texts in _ESIA_TEXTS.items():
    TEXTS[_language].update(_texts)

# notice key -> language -> (heading, paragraphs)
NOTICES = {
    "esia-unconfirmed": {
        "ru": (
            "Ваша учётная запись на Госуслугах не подтверждена",
            (
                "Вход выполнен, но доступ к медицинским данным открывается только с подтверждённой учётной записью. "
                "Сейчас вам доступны только ваши основные данные (ФИО, дата рождения, пол).",
                "Подтвердить учётную запись можно: в центре обслуживания (МФЦ, отделение СФР) с паспортом и СНИЛС; "
                "онлайн через банк (Сбербанк, Т-Банк, ВТБ и другие банки-партнёры Госуслуг); "
                "электронной подписью; или кодом подтверждения, полученным заказным письмом Почты России.",
                "После подтверждения выйдите и войдите через Госуслуги снова.",
            ),
        ),
        "en": (
            "Your Gosuslugi account is not confirmed",
            (
                "You are signed in, but medical data is open only to confirmed accounts. For now you see only your basic "
                "details (name, date of birth, sex).",
                "You can confirm the account at a service centre (MFC, Social Fund office) with your passport and SNILS; online "
                "through a partner bank of Gosuslugi; with an electronic signature; or with a code sent by registered mail.",
                "After confirming it, sign out and sign in through Gosuslugi again.",
            ),
        ),
    },
}


def notices_for(service, account) -> list[tuple]:
    """(key, heading, paragraphs) of the notices the identity providers have for this account."""
    if account is None:
        return []
    language = lang()
    return [(key, *NOTICES[key][language]) for key in service.providers.notices(account) if key in NOTICES]


def lang() -> str:
    return request.accept_languages.best_match(LANGS) or "ru"


def describe_scope(scope: str, language: str) -> str:
    i = 1 if language == "ru" else 0
    if scope in _SCOPE_TEXTS:
        return _SCOPE_TEXTS[scope][i]
    s = parse_scope(scope)
    if s is None:
        return scope
    perms = ", ".join(_PERMS[p][i] for p in "cruds" if p in s.perms)
    what = ("all data", "все данные")[i] if s.rtype == "*" else s.rtype
    text = f"{perms}: {what} ({_CONTEXTS[s.context][i]})"
    if s.params:
        text += " — " + ", ".join(f"{k}={v}" for k, v in s.params)
    return text


# -- session -------------------------------------------------------------------------------
def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = hashing.new_token(24)
    return session["csrf"]


def csrf_ok() -> bool:
    return hashing.same(session.get("csrf"), request.form.get("csrf"))


def _end_session(notice: str | None) -> None:
    pending = session.get("pending")
    session.clear()
    if notice:
        session["notice"] = notice  # shown once on the next page
    if pending:
        session["pending"] = pending


def current_account(service):
    """The signed-in account, or None. A session past its lifetime (sessions.lifetime) or
    from before the account's sessions were ended (Records.end_sessions) is signed out."""
    account_id = session.get("account_id")
    if not account_id:
        return None
    if time.time() - session.get("auth_time", 0) > sessions.lifetime(service.settings):
        _end_session("session-expired")
        return None
    account = service.records.account(account_id)
    if account is None or account.disabled:
        _end_session(None)
        return None
    if session.get("epoch") != (account.session_epoch or 0):
        _end_session("session-ended")
        return None
    return account


def sign_in(account, provider: str) -> str | None:
    """The identity provider has vouched for the account: where the browser goes next.

    A local account with a second factor first goes to its one-time code (totp.py);
    otherwise the session starts and this is the waiting authorization request, if any."""
    if provider == "local" and account.totp_enabled:
        begin_second_factor(account)
        return url_for("mfa.verify")
    return start_session(account, provider)


def start_session(account, provider: str) -> str | None:
    """Start a fresh session for the account; the waiting authorization request, if any."""
    pending = session.get("pending")
    session.clear()
    session.permanent = True  # the cookie expires with the session (sessions.lifetime)
    session["account_id"] = account.id
    session["auth_time"] = int(time.time())
    session["epoch"] = account.session_epoch or 0
    session["idp"] = provider
    session["csrf"] = hashing.new_token(24)
    return pending if isinstance(pending, str) and pending.startswith(request.script_root + "/auth/authorize?") else None


def begin_second_factor(account) -> None:
    """The password was right; the session waits for the one-time code (totp.py)."""
    pending = session.get("pending")
    session.clear()
    session["mfa_account"] = account.id
    session["mfa_time"] = int(time.time())
    session["csrf"] = hashing.new_token(24)
    if pending:
        session["pending"] = pending


def remember_pending() -> None:
    session["pending"] = request.script_root + request.full_path


# -- pages ---------------------------------------------------------------------------------
_BASE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6f8;margin:0;color:#1b1f23}
main{max-width:30rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0} label{display:block;margin:.8rem 0 .3rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1rem;padding:.55rem 1.2rem;font-size:1rem;cursor:pointer}
.error{color:#b00020;background:#fdecea;padding:.6rem;border-radius:4px}
.muted{color:#57606a} ul{padding-left:1.2rem} li{margin:.25rem 0} code{font-size:.85rem}
</style></head><body><main>
{% for key, heading, paragraphs in notices or () %}<section class="error" role="note" data-notice="{{ key }}">
<h2>{{ heading }}</h2>{% for p in paragraphs %}<p>{{ p }}</p>{% endfor %}</section>{% endfor %}
"""
_END = "</main></body></html>"

LOGIN_PAGE = (
    _BASE
    + """<h1>{{ t.heading }}</h1>
{% if error %}<p class="error" role="alert">{{ t[error] }}</p>{% endif %}
{% if account %}
<p>{{ t["signed-in"] }} <b>{{ account.name or account.login }}</b></p>
<form method="post" action="{{ url_for('smart.logout') }}"><input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit">{{ t["sign-out"] }}</button></form>
{% else %}
<form method="post" action="{{ url_for('smart.login') }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="login">{{ t.login }}</label><input type="text" id="login" name="login" autocomplete="username" value="{{ login }}" required autofocus>
<label for="password">{{ t.password }}</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">{{ t.submit }}</button>
</form>
{% if others %}<p class="muted">{{ t.or }}:</p><ul>{% for p in others %}
<li><a href="{{ url_for('smart.login_with', name=p.name) }}">{{ p.label.get(lang) or p.label.get('en') or p.name }}</a></li>{% endfor %}</ul>{% endif %}
{% endif %}
"""
    + _END
)

CONSENT_PAGE = (
    _BASE
    + """<h1>{{ t["consent-title"] }}</h1>
<p>{{ t["consent-intro"] }} <b>{{ client.name }}</b> <code>{{ client.client_id }}</code></p>
<p class="muted">{{ t.account }}: {{ account.name or account.login }}{% if account.fhir_user %} ({{ account.fhir_user }}){% endif %}</p>
{% if error %}<p class="error" role="alert">{{ t[error] }}</p>{% endif %}
<p>{{ t.granted }}</p>
<ul>{% for s, text in granted %}<li>{{ text }} <code>{{ s }}</code></li>{% endfor %}</ul>
{% if dropped %}<p class="muted">{{ t["not-granted"] }}</p>
<ul class="muted">{% for s, text in dropped %}<li>{{ text }} <code>{{ s }}</code></li>{% endfor %}</ul>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
{% if ask_patient %}<label for="patient">{{ t.patient }}</label><input type="text" id="patient" name="patient" value="{{ patient }}">{% endif %}
<button type="submit" name="decision" value="approve">{{ t.approve }}</button>
<button type="submit" name="decision" value="deny">{{ t.deny }}</button>
</form>
"""
    + _END
)

ERROR_PAGE = (
    _BASE
    + """<h1>{{ t["error-title"] }}</h1>
<p class="error"><code>{{ error }}</code>{% if description %}: {{ description }}{% endif %}</p>
"""
    + _END
)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def render(page: str, status: int = 200, **context):
    language = lang()
    texts = dict(TEXTS[language])
    texts["account-locked"] = texts["account-locked"].format(minutes=max(1, -(-current_app.config["FHIR_SETTINGS"].auth_lockout_seconds // 60)))
    notice = session.pop("notice", None)
    if notice in texts and not context.get("error"):
        context["error"] = notice
    context.setdefault("title", texts["title"])
    html = render_template_string(page, lang=language, t=texts, csrf=csrf_token(), **context)
    return current_app.response_class(html, status=status, headers=PAGE_HEADERS, mimetype="text/html")
