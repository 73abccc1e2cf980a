"""Storage: TimescaleDB schema and migrations, the batched idempotent writer, the notification log."""
