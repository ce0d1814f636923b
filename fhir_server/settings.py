"""One typed settings object, read from FHIR_* environment variables.

Every default works with no configuration: the embedded (in-process) store,
the base URL taken from each request, JSON bodies up to 16 MiB.
"""

from __future__ import annotations

from pydantic import Field
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
    log_level: str = Field(default="INFO", description="Python logging level.")
    demo: bool = Field(default=False, description="Load the demo medical card at start (embedded store only).")

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri
