"""`citywatch infra up|down|status`: both local services together."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from citywatch.infra.tansu import LocalBroker
from citywatch.infra.timescale import LocalTimescale


@dataclass(frozen=True)
class LocalInfra:
    broker: LocalBroker
    database: LocalTimescale

    @classmethod
    def create(cls, state_dir: Path, host: str, broker_port: int, db_port: int) -> LocalInfra:
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(LocalBroker(state_dir, host, broker_port), LocalTimescale(state_dir, host, db_port))

    def up(self) -> dict[str, str]:
        self.broker.start()
        try:
            self.database.start()
        except Exception:
            self.broker.stop()
            raise
        return self.addresses()

    def down(self, keep_data: bool = False) -> dict[str, bool]:
        """Stop both; unless `keep_data`, also remove what `up` created: the database cluster
        (wherever it had to live) and the replay checkpoints, which describe a broker whose
        in-memory log is gone with it."""
        stopped = {"timescaledb": self.database.stop(), "tansu": self.broker.stop()}
        if not keep_data:
            stopped["removed_data"] = self.database.remove()
            shutil.rmtree(self.broker.state_dir / "replay", ignore_errors=True)
        return stopped

    def addresses(self) -> dict[str, str]:
        return {"broker": self.broker.url, "database": self.database.dsn}

    def status(self) -> dict[str, dict[str, object]]:
        return {
            "tansu": {"healthy": self.broker.healthy(), "pid": self.broker.daemon.pid(),
                      "address": self.broker.url, "log": str(self.broker.daemon.log_file)},
            "timescaledb": {"healthy": self.database.healthy(), "pid": self.database.daemon.pid(),
                            "address": self.database.dsn, "log": str(self.database.daemon.log_file)},
        }
