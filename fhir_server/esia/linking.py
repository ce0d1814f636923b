"""From an ESIA person to our Account and FHIR resource.

Order: an account already linked to the ESIA oid; else a Practitioner with the person's
SNILS (a doctor signs in as that practitioner); else a Patient with the ESIA oid or the
SNILS identifier (the oid is then added to it); else a new Patient made from ESIA's data
(name, birth date, gender, SNILS, passport, contacts, oid). Several matches are refused
(someone must merge the records first), never guessed.

Resources are read and written through the app's own FHIR interactions (an in-process
client, as the demo seed does), so they are validated, versioned, indexed and audited
under the subject "esia-federation". The trust level ESIA reported at the last sign-in is
kept per account in `auth_esia_links` (it limits what the account may be granted), and so
is the OMS policy number (ENP) of a confirmed account's verified MDCL_PLCY document: the
second source of Patient/$bind-oms-policy (interactions/oms.py). It is kept nowhere else:
not in the log, not in the FHIR store until the patient binds it.
"""

from __future__ import annotations

import logging
import re

from flask import current_app, has_app_context

from consent.principal import Principal
from profiles_ru import identifiers

from ..auth.models import utcnow
from ..auth.providers import ProviderError
from .client import EsiaSignIn
from .persons import snils_digits, snils_valid

log = logging.getLogger("fhir_server.esia")

SNILS_SYSTEM = identifiers.SYSTEMS["snils"].system  # urn:oid:1.2.643.100.3
ESIA_OID_SYSTEM = "https://esia.gosuslugi.ru/rs/prns"  # the oid is the person's id in ESIA's /rs/prns
PASSPORT_SYSTEM = "urn:oid:1.2.643.5.1.13.13.99.2.48.1"  # NSI 1.2.643.5.1.13.13.99.2.48 identity documents, 1 = passport of the RF
ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOGIN_DOMAIN = "esia.gosuslugi.ru"  # account login "<oid>@esia.gosuslugi.ru": never a password login (no password)
LINKS = "auth_esia_links"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

GENDERS = {"M": "male", "F": "female"}
# ctts type -> FHIR ContactPoint (system, use)
CONTACT_TYPES = {"MBT": ("phone", "mobile"), "PHN": ("phone", "home"), "EML": ("email", None)}


def esia_login(oid: str) -> str:
    return f"{oid}@{LOGIN_DOMAIN}"


def _birth_date(text: str | None) -> str | None:
    m = re.match(r"^(\d{2})\.(\d{2})\.(\d{4})$", text or "")
    return f"{m.group(3)}-{m.group(2)}-{m.group(1)}" if m else None


def _phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return "+" + digits if digits else value


def reported_enp(s: EsiaSignIn) -> str | None:
    """The ENP of the person's OMS policy as ESIA vouches for it: a MDCL_PLCY document ESIA
    verified (vrfStu VERIFIED) of a confirmed account, its number as 16 digits with a valid
    check digit. None otherwise (an unconfirmed account's documents are the person's word)."""
    if not s.trusted:
        return None
    for doc in s.documents:
        if doc.get("type") == "MDCL_PLCY" and doc.get("vrfStu") == "VERIFIED" and isinstance(doc.get("number"), str):
            enp = identifiers.normalize("enp", doc["number"])
            if identifiers.check("enp", enp) is None:
                return enp
    return None


def reported_policy(account_id: str | None) -> tuple[str, str] | None:
    """(ENP, ESIA's URL) that ESIA reported at the account's last sign-in, when this app
    signs in through ESIA and the account was confirmed then; None otherwise."""
    if not account_id or not has_app_context():
        return None
    service = current_app.extensions.get("fhir_auth")
    provider = service.providers.get("esia") if service is not None else None
    linker = getattr(provider, "linker", None)
    if not isinstance(linker, Linker):
        return None
    enp = linker.oms_policy(account_id)
    return (enp, provider.config.url) if enp else None


def patient_from_esia(s: EsiaSignIn) -> dict:
    """A Patient resource made of ESIA's data."""
    p = s.person
    given = [x for x in (p.get("firstName"), p.get("middleName")) if x]
    name = {"use": "official", "family": p.get("lastName") or "", "given": given}
    name["text"] = " ".join(x for x in (p.get("lastName"), *given) if x)
    identifiers = [{"system": ESIA_OID_SYSTEM, "value": s.oid}]
    snils = snils_digits(p.get("snils"))
    if snils:
        identifiers.append({"system": SNILS_SYSTEM, "value": snils,
                            "type": {"coding": [{"system": ID_TYPE, "code": "SB"}], "text": "СНИЛС"}})
    for doc in s.documents:
        if doc.get("type") == "RF_PASSPORT" and doc.get("number"):
            ident = {"system": PASSPORT_SYSTEM, "value": f"{doc.get('series', '')} {doc['number']}".strip(),
                     "type": {"coding": [{"system": ID_TYPE, "code": "PPN"}], "text": "Паспорт гражданина РФ"}}
            if doc.get("issuedBy"):
                ident["assigner"] = {"display": str(doc["issuedBy"])[:200]}
            issued = _birth_date(doc.get("issueDate"))
            if issued:
                ident["period"] = {"start": issued}
            identifiers.append(ident)
    resource = {"resourceType": "Patient", "identifier": identifiers, "active": True, "name": [{k: v for k, v in name.items() if v}]}
    if GENDERS.get(p.get("gender")):
        resource["gender"] = GENDERS[p["gender"]]
    if _birth_date(p.get("birthDate")):
        resource["birthDate"] = _birth_date(p["birthDate"])
    telecom = []
    for c in s.contacts:
        kind = CONTACT_TYPES.get(c.get("type"))
        if kind and c.get("value"):
            point = {"system": kind[0], "value": _phone(c["value"]) if kind[0] == "phone" else str(c["value"])}
            if kind[1]:
                point["use"] = kind[1]
            telecom.append(point)
    if telecom:
        resource["telecom"] = telecom
    return resource


class Linker:
    """Links ESIA persons to accounts of one authorization server (its Records)."""

    def __init__(self, records):
        self.records = records

    # -- the trust record ------------------------------------------------------------------
    def _links(self):
        from mongoengine.connection import get_db

        return get_db(self.records.alias)[LINKS]

    def trusted(self, account_id: str) -> bool | None:
        """What ESIA said at the account's last sign-in (None: not an ESIA account)."""
        with self.records.lock:
            doc = self._links().find_one({"_id": account_id})
        return None if doc is None else bool(doc.get("trusted"))

    def oms_policy(self, account_id: str) -> str | None:
        """The ENP ESIA vouched for at the account's last sign-in (None: none)."""
        with self.records.lock:
            doc = self._links().find_one({"_id": account_id})
        return doc.get("oms_enp") if doc is not None and doc.get("trusted") is True else None

    def _remember(self, account_id: str, s: EsiaSignIn) -> None:
        """What this sign-in established replaces the last one's: a policy no longer reported
        (or reported by an account no longer confirmed) is forgotten."""
        enp = reported_enp(s)
        change = {"$set": {"oid": s.oid, "trusted": s.trusted, "signed_in_at": utcnow()}}
        if enp:
            change["$set"]["oms_enp"] = enp
        else:
            change["$unset"] = {"oms_enp": ""}
        with self.records.lock:
            self._links().update_one({"_id": account_id}, change, upsert=True)

    # -- linking ---------------------------------------------------------------------------------
    def link(self, s: EsiaSignIn):
        snils = snils_digits(s.person.get("snils"))
        if snils and not snils_valid(snils):
            log.info("ESIA sign-in refused: the person's SNILS fails its check digits")
            raise ProviderError("esia-bad-person")
        account = self.records.account_by_login(esia_login(s.oid))
        if account is not None and account.fhir_user is None and s.trusted:
            # Signed in before unconfirmed, with a SNILS that named someone's card: now ESIA vouches for it.
            role, fhir_user = self._match(s, snils)
            self.records.set_account_fields(account.id, role=role, fhir_user=fhir_user)
            account = self.records.account(account.id)
            log.info("ESIA person now confirmed: account %s linked (%s)", account.id, role)
        if account is None:
            role, fhir_user = self._match(s, snils)
            name = " ".join(x for x in (s.person.get("lastName"), s.person.get("firstName"), s.person.get("middleName")) if x) or None
            try:
                account = self.records.add_account(esia_login(s.oid), role, None, fhir_user=fhir_user, name=name)
                log.info("ESIA person linked to new account %s (%s)", account.id, role)
            except ValueError:  # a concurrent first sign-in of the same person made it
                account = self.records.account_by_login(esia_login(s.oid))
        if account is None or account.disabled:
            raise ProviderError("account-disabled")
        self._remember(account.id, s)
        return account

    def _match(self, s: EsiaSignIn, snils: str) -> tuple[str, str | None]:
        """(role, fhirUser) of a first sign-in. ESIA vouches for the SNILS of a confirmed
        account only: an unconfirmed one whose SNILS names an existing Practitioner or Patient
        gets an account linked to no one (fhirUser None) until it signs in confirmed. The
        ESIA oid is ESIA's own account id, so a card already carrying it is the person's."""
        client = self._client()
        if snils:
            doctors = self._search(client, "Practitioner", f"{SNILS_SYSTEM}|{snils}")
            if len(doctors) > 1:
                raise ProviderError("esia-ambiguous")
            if doctors:
                return "practitioner", f"Practitioner/{doctors[0]['id']}" if s.trusted else None
        found = self._search(client, "Patient", f"{ESIA_OID_SYSTEM}|{s.oid}")
        if not found and snils:
            found = self._search(client, "Patient", f"{SNILS_SYSTEM}|{snils}")
            if found and not s.trusted:
                return "patient", None
        if len(found) > 1:
            raise ProviderError("esia-ambiguous")
        if found:
            self._add_oid(client, found[0], s.oid)
            return "patient", f"Patient/{found[0]['id']}"
        r = client.post("/fhir/Patient", json=patient_from_esia(s), headers=FHIR_JSON)
        if r.status_code != 201:
            log.error("a Patient from ESIA data was refused: HTTP %d", r.status_code)
            raise ProviderError("esia-bad-person")
        return "patient", f"Patient/{r.get_json()['id']}"

    @staticmethod
    def _client():
        from ..app import internal_client

        return internal_client(current_app._get_current_object(), Principal("admin", subject="esia-federation", client_id="esia"))

    @staticmethod
    def _search(client, rtype: str, identifier: str) -> list[dict]:
        r = client.get(f"/fhir/{rtype}", query_string={"identifier": identifier, "_count": "2"}, headers=FHIR_JSON)
        if r.status_code != 200:
            log.error("the %s search of an ESIA sign-in failed: HTTP %d", rtype, r.status_code)
            raise ProviderError("esia-unavailable-store")
        return [e["resource"] for e in r.get_json().get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]

    @staticmethod
    def _add_oid(client, resource: dict, oid: str) -> None:
        if any(i.get("system") == ESIA_OID_SYSTEM for i in resource.get("identifier", [])):
            return
        updated = {**resource, "identifier": [*resource.get("identifier", []), {"system": ESIA_OID_SYSTEM, "value": oid}]}
        version = resource.get("meta", {}).get("versionId")
        headers = {**FHIR_JSON, **({"If-Match": f'W/"{version}"'} if version else {})}
        r = client.put(f"/fhir/Patient/{resource['id']}", json=updated, headers=headers)
        if r.status_code not in (200, 201):
            log.warning("the ESIA oid could not be added to a Patient: HTTP %d", r.status_code)
