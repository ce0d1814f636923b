"""One typed settings object, read from FHIR_* environment variables.

Every default works with no configuration: the embedded (in-process) store,
the base URL taken from each request, JSON bodies up to 16 MiB.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIR_", extra="ignore")

    mongodb_uri: str | None = Field(
        default=None, description="MongoDB connection string; unset means the embedded in-process store (mongomock)."
    )
    db_name: str = Field(default="fhir", description="Database name inside MongoDB.")
    base_url: str | None = Field(
        default=None, description="Public base URL of the FHIR endpoint (e.g. https://fhir.example.ru/fhir); unset means derived from each request."
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger gets 413 before parsing.")
    default_page_size: int = Field(default=20, ge=1, description="Page size of history and search bundles when _count is absent.")
    max_page_size: int = Field(default=500, ge=1, description="Largest _count honoured.")
    max_bundle_entries: int = Field(default=10000, ge=1, description="Most entries accepted in one batch or transaction Bundle.")
    break_glass_minutes: int = Field(default=60, ge=1, le=24 * 60, description="How long an emergency (break-the-glass) access lasts.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    demo: bool = Field(default=False, description="Load the demo medical card at start (embedded store only).")
    load_definitions: bool = Field(
        default=True,
        description="Write the packaged conformance resources (NSI CodeSystems, ValueSets, ConceptMaps, RU profiles) into the store at start, "
        "each once per version (fhir_server/packages.py).",
    )
    demo_patients: int = Field(
        default=25, ge=0, le=100_000,
        description="Demo only: how many generated patients (seed/generator.py, seed 1) are loaded beside the fixed demo card; 0 means none.",
    )
    demo_password: SecretStr | None = Field(
        default=None, description="Password of every demo account; unset means one is generated per account and printed once at start."
    )
    demo_client_secret: SecretStr | None = Field(
        default=None, description="Secret of the demo confidential client; unset means generated and printed once at start."
    )

    # SMART-on-FHIR authorization server (fhir_server/auth).
    auth: Literal["smart", "off"] = Field(
        default="smart", description="smart: every FHIR request needs a SMART bearer token; off: no authorization at all (development only)."
    )
    auth_signing_key: str | None = Field(
        default=None,
        description="Private key (PEM text, or the path of a PEM file; RSA 2048+ or EC P-256) that signs access and id tokens; unset means an ephemeral key made at start.",
    )
    auth_issuer: str | None = Field(
        default=None, description="Public URL of the authorization server (the /auth endpoints); unset means derived from the FHIR base URL."
    )
    auth_session_secret: SecretStr | None = Field(
        default=None, description="Key that signs the sign-in session cookie; unset means random per process (set it when running several workers)."
    )
    auth_access_token_seconds: int = Field(default=300, ge=1, description="Lifetime of access tokens and id tokens.")
    auth_code_seconds: int = Field(default=60, ge=1, le=600, description="Lifetime of authorization codes.")
    auth_refresh_token_seconds: int = Field(default=30 * 24 * 3600, ge=60, description="Lifetime of refresh tokens granted with offline_access.")
    auth_online_refresh_seconds: int = Field(default=8 * 3600, ge=60, description="Lifetime of refresh tokens granted with online_access.")
    auth_session_seconds: int = Field(default=8 * 3600, ge=60, description="How long a sign-in at /auth/login is remembered by the browser session.")
    auth_lockout_seconds: int = Field(
        default=15 * 60, ge=1, description="How long a login stays locked after three wrong passwords (or one-time codes) in a row."
    )
    oms_registry: str | None = Field(
        default=None,
        description="Insurers' registry that Patient/$bind-oms-policy checks ENPs against: 'demo' (the seeded policies, seed/oms_policies.json), "
        "the path of a JSON file of the same shape, or 'module:attribute' naming a registry client; unset means 'demo' with FHIR_DEMO, else none.",
    )

    # Gosuslugi (ESIA) sign-in (fhir_server/esia): unset URL means no ESIA sign-in, except the demo's emulator.
    esia_url: str | None = Field(
        default=None, description="ESIA base URL (https://esia.gosuslugi.ru, https://esia-portal1.test.gosuslugi.ru, or an emulator)."
    )
    esia_client_id: str | None = Field(default=None, description="The information system's mnemonic registered with ESIA (client_id).")
    esia_api: Literal["v2", "legacy"] = Field(
        default="v2", description="v2: /aas/oauth2/v2/ac + v3/te with a raw signature; legacy: /aas/oauth2/ac + te with detached PKCS#7."
    )
    esia_key: SecretStr | None = Field(
        default=None, description="The system's PKCS#8 private key (PEM text or file path): GOST R 34.10-2012 256, or RSA on test stands."
    )
    esia_certificate: str | None = Field(default=None, description="The system's certificate for that key (PEM/DER text or file path).")
    esia_verify_certificate: str | None = Field(
        default=None, description="ESIA's certificate (PEM/DER text or file path) that its tokens must be signed with (RS256 or GOST)."
    )
    esia_issuer: str | None = Field(
        default=None, description="Expected `iss` of ESIA tokens (production: http://esia.gosuslugi.ru/); unset means FHIR_ESIA_URL + '/'."
    )
    esia_scope: str = Field(
        default="openid fullname birthdate gender snils id_doc medical_doc contacts", description="Scopes asked of ESIA (must include openid)."
    )
    esia_redirect_uri: str | None = Field(
        default=None, description="redirect_uri registered with ESIA; unset means <authorization server>/login/esia/callback."
    )
    esia_timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="Connect and read timeout of every call to ESIA.")
    esia_retries: int = Field(default=2, ge=0, le=5, description="Retries of a call to ESIA after a 5xx answer or a connection error.")
    esia_retry_backoff_seconds: float = Field(default=0.5, ge=0, le=10, description="First retry delay; doubled on each further retry.")
    esia_emulator_port: int = Field(
        default=8090, ge=0, le=65535, description="Demo only (no FHIR_ESIA_URL): port of the in-process ESIA emulator; 0 means none."
    )

    enforce_ru_profiles: bool = Field(
        default=False,
        description="Validate every written Patient, Practitioner, Organization, Coverage, Encounter, DiagnosticReport, MedicationRequest "
        "and laboratory Observation against its RU profile (profiles_ru/definitions) even when meta.profile does not declare it.",
    )

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri
