"""Storage's settings: the TimescaleDB connection, how events are batched into it, and how
long each table keeps them. citywatch/settings.py puts them under `storage`."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from ingest.settings_base import Strict
from storage.retention import DEFAULT_RETENTION


class StorageSettings(Strict):
    dsn: str = "postgresql://postgres@127.0.0.1:15433/citywatch"
    pool_size: int = Field(default=4, ge=1)
    batch_size: int = Field(default=2000, ge=1, description="events per write at most (Faust buffers 4096)")
    batch_window_s: float = Field(default=1.0, gt=0)
    write_connections: int = Field(default=2, ge=1, le=16, description=(
        "connections one big batch of a table is split over (at least 1,000 rows each); "
        "at most pool_size"))
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {t: d.days for t, d in DEFAULT_RETENTION.items()},
        description="days kept per table (snapshots follow detections); others keep their default")
    retention_every_s: float = Field(default=3600.0, gt=0, description="how often old chunks are dropped")

    @field_validator("retention_days")
    @classmethod
    def _known_tables(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_RETENTION))
        if unknown:
            tables = ", ".join(DEFAULT_RETENTION)
            raise ValueError(f"no retention for {', '.join(unknown)} (tables: {tables})")
        if any(days < 1 for days in value.values()):
            raise ValueError("retention is at least one day")
        return {**{t: d.days for t, d in DEFAULT_RETENTION.items()}, **value}

    @model_validator(mode="after")
    def _writer_fits_the_pool(self) -> StorageSettings:
        if self.write_connections > self.pool_size:
            raise ValueError(
                f"write_connections ({self.write_connections}) exceeds pool_size ({self.pool_size})")
        return self

    @property
    def retention(self) -> dict[str, timedelta]:
        return {table: timedelta(days=days) for table, days in self.retention_days.items()}
