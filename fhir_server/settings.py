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

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri
