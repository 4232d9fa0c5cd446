"""All settings in one typed place, read from ``TONGBAN_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'tongban.db'}",
        description="SQLAlchemy URL; sqlite:///… (embedded) or postgresql+psycopg://…",
    )
    catalog_dir: Path = ROOT / "catalog" / "items"
    alliance_file: Path = ROOT / "catalog" / "alliance.yaml"
    data_dir: Path = ROOT / "var"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Applicant progress queries per client address per minute.
    progress_rate_per_minute: int = 30
    token_days: int = 90
    # Working days a deferred (容缺) material may stay missing.
    defer_days: int = 5
    # Holidays for years chinese-calendar does not know yet (ISO dates).
    extra_holidays: list[str] = []
    max_body_bytes: int = 1_000_000


@lru_cache
def get_settings() -> Settings:
    return Settings()
