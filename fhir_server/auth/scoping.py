"""What a token may carry: the requested scopes, cut down by the client's registration,
the account's role (consent.scopes.narrow) and what this server can provide."""

from __future__ import annotations

from consent.scopes import NON_RESOURCE, narrow, parse_scope, well_formed

# Launch contexts this server cannot provide: there is no EHR launch (the `launch`
# parameter) and no encounter picker. Requested, they are left out of the grant.
UNSUPPORTED = frozenset(("launch", "launch/encounter"))
REFRESH_SCOPES = frozenset(("offline_access", "online_access"))


def split(scope: str | None) -> list[str]:
    return list(dict.fromkeys((scope or "").split()))


def join(scopes) -> str:
    return " ".join(dict.fromkeys(scopes))


def covered_by(requested: str, registered: list[str]) -> bool:
    """Is the requested scope inside one of the client's registered scopes?

    A non-resource scope must be registered as it is. A resource scope is covered by a
    registered one of the same context whose type is the same or `*`, whose permissions
    include the requested ones, and whose v2 parameters (e.g. `?category=...`) all appear
    in the requested scope as well.
    """
    if requested in NON_RESOURCE:
        return requested in registered
    want = parse_scope(requested)
    if want is None:
        return False
    for text in registered:
        have = parse_scope(text)
        if (
            have is not None
            and have.context == want.context
            and have.rtype in ("*", want.rtype)
            and want.perms <= have.perms
            and set(have.params) <= set(want.params)
        ):
            return True
    return False


def for_client(requested: str | None, registered: str | None) -> str:
    """The requested scopes that the client was registered for (order kept)."""
    allowed = split(registered)
    return join(s for s in split(requested) if well_formed(s) and covered_by(s, allowed))


def grantable(role: str, requested: str | None, registered: str | None, ceiling=None) -> str:
    """The scope a token gets: client registration, then role, then what the server supports,
    then the account's ceiling (identity providers' limit, see cap) when there is one."""
    scope = narrow(role, for_client(requested, registered))
    scopes = [s for s in split(scope) if s not in UNSUPPORTED]
    return join(cap(scopes, ceiling) if ceiling is not None else scopes)


def cap(scopes, ceiling) -> list[str]:
    """The scopes cut down to a ceiling: a non-resource scope stays if the ceiling has it; a
    resource scope becomes, for each ceiling scope of its context whose type it covers, that
    type with the permissions both have (patient/*.rs under patient/Patient.rs -> patient/Patient.rs)."""
    out = []
    for text in scopes:
        want = parse_scope(text)
        if want is None:
            if text in ceiling:
                out.append(text)
            continue
        for limit in filter(None, map(parse_scope, ceiling)):
            perms = "".join(p for p in "cruds" if p in want.perms and p in limit.perms)
            if limit.context == want.context and want.rtype in ("*", limit.rtype) and perms and not limit.params:
                out.append(f"{limit.context}/{limit.rtype}.{perms}")
    return list(dict.fromkeys(out))


def refreshable(scope: str | None) -> bool:
    return bool(REFRESH_SCOPES.intersection(split(scope)))
