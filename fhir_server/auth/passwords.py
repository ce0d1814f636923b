"""The password policy of local accounts, as one table of rules.

Every password set anywhere (CLI `accounts add`, the admin API, the demo accounts) goes
through Records.add_account / set_account_password, which call `check` and refuse with
PasswordPolicyError naming each rule broken. Passwords are hashed with Argon2id
(hashing.py) and never logged.
"""

from __future__ import annotations

import secrets
import string

MIN_LENGTH = 8

# key, test, English, Russian
RULES: tuple[tuple[str, object, str, str], ...] = (
    ("length", lambda p: len(p) >= MIN_LENGTH, f"at least {MIN_LENGTH} characters", f"не короче {MIN_LENGTH} символов"),
    ("upper", lambda p: any(c.isupper() for c in p), "an upper-case letter", "заглавная буква"),
    ("lower", lambda p: any(c.islower() for c in p), "a lower-case letter", "строчная буква"),
    ("digit", lambda p: any(c.isdigit() for c in p), "a digit", "цифра"),
    ("special", lambda p: any(not c.isalnum() and not c.isspace() for c in p), "a special character (such as ! - _ %)",
     "специальный символ (например ! - _ %)"),
    ("spaces", lambda p: p == p.strip(), "no spaces at the start or end", "без пробелов в начале и в конце"),
)
_TEXT = {key: (en, ru) for key, _, en, ru in RULES}


class PasswordPolicyError(ValueError):
    """The password breaks the rules in `broken` (keys of RULES)."""

    def __init__(self, broken: list[str]):
        self.broken = broken
        super().__init__(describe(broken, "en"))


def broken_rules(password: str) -> list[str]:
    return [key for key, test, _, _ in RULES if not test(password or "")]


def check(password: str) -> None:
    broken = broken_rules(password)
    if broken:
        raise PasswordPolicyError(broken)


def describe(broken: list[str], lang: str = "en") -> str:
    i = 1 if lang == "ru" else 0
    head = ("The password needs: ", "Пароль должен содержать: ")[i]
    return head + "; ".join(_TEXT[k][i] for k in broken)


def generate(length: int = 16) -> str:
    """A random password that satisfies every rule (for demo accounts)."""
    alphabet = string.ascii_letters + string.digits + "-_!%"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not broken_rules(candidate) and candidate[0].isalnum() and candidate[-1].isalnum():
            return candidate
