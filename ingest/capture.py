"""Frame readers over OpenCV: video files, and live streams (RTSP, HTTP MJPEG, USB devices).

Files are read strided (grab() skips what is not sampled), optionally paced in real
time so they behave like a camera. Live streams are drained continuously by a
thread that keeps only the newest frame: sampling slower than the camera sends
must not build up latency in OpenCV's buffer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

Image = np.ndarray[Any, Any]
LIVE_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


class EndOfStream(Exception):
    """A non-looping file has no more frames."""


class FrameReader(Protocol):
    def read(self, interval_s: float) -> Image:
        """The next frame at least `interval_s` of source time after the previous one."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class KeyframeFirst(Protocol):
    """A reader that can decode only keyframes while the scene is static (ingest.av_capture)."""

    keyframes_only: bool


def open_reader(url: str, loop: bool = True, stall_timeout_s: float = 10.0,
                decoder: str = "opencv") -> FrameReader:
    """Blocking: opens the capture. Raises SourceError when it cannot. `decoder`: pyav (files
    and streams, keyframes only while idle), opencv, or auto (PyAV except for usb:N)."""
    if url.startswith("usb:"):
        return StreamReader(int(url.removeprefix("usb:")), url, stall_timeout_s)
    if decoder in ("auto", "pyav"):
        from ingest.av_capture import AvFileReader, AvStreamReader

        if url.startswith(LIVE_SCHEMES):
            return AvStreamReader(url, stall_timeout_s)
        return AvFileReader(Path(url.removeprefix("file://")), loop)
    if url.startswith(LIVE_SCHEMES):
        return StreamReader(url, url, stall_timeout_s)
    return FileReader(Path(url.removeprefix("file://")), loop)


class FileReader:
    def __init__(self, path: Path, loop: bool) -> None:
        if not path.is_file():
            raise SourceError(f"video file not found: {path}")
        self.path = path
        self.loop = loop
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise SourceError(f"OpenCV cannot open {path}")
        self.native_fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 25.0)
        self.position_s: float | None = None  # video time of the frame last returned

    def read(self, interval_s: float) -> Image:
        stride = max(1, round(interval_s * self.native_fps))
        image = self._strided(stride)
        if image is None:
            if not self.loop:
                raise EndOfStream(str(self.path))
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            image = self._strided(stride)
            if image is None:
                raise SourceError(f"no frames in {self.path}")
        # POS_FRAMES is the index of the next frame: the one returned is one before it.
        self.position_s = (self._capture.get(cv2.CAP_PROP_POS_FRAMES) - 1) / self.native_fps
        return image

    def _strided(self, stride: int) -> Image | None:
        for _ in range(stride - 1):
            if not self._capture.grab():
                return None
        ok, image = self._capture.read()
        return image if ok else None

    def close(self) -> None:
        self._capture.release()


class NewestFrame:
    """What a drain thread decoded last, for a sampler slower than the camera: each take waits
    for a frame newer than the one taken before, never for a backlog. The camera has stalled
    when nothing at all came for the stall timeout: a reader that decodes only keyframes gets
    no picture for a whole keyframe interval (10 s and more on some cameras) while the stream
    flows, and calls `alive` for what it drops."""

    def __init__(self, name: str, stall_timeout_s: float) -> None:
        self.name = name
        self.stall_timeout_s = stall_timeout_s
        self._latest: Any = None
        self._latest_seq = 0
        self._returned_seq = 0
        self._error: str | None = None
        self._heard_at = time.monotonic()
        self._cond = threading.Condition()

    def alive(self) -> None:
        """Data came from the camera that gave no frame (a packet dropped undecoded)."""
        self._heard_at = time.monotonic()

    def put(self, frame: Any) -> None:
        with self._cond:
            self._latest, self._latest_seq = frame, self._latest_seq + 1
            self._heard_at = time.monotonic()
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        """The stream ended: takes raise once the frames before it are taken."""
        with self._cond:
            self._error = reason
            self._cond.notify_all()

    def take(self) -> Any:
        asked_at = time.monotonic()
        with self._cond:
            while self._latest_seq == self._returned_seq and self._error is None:
                silent_until = max(self._heard_at, asked_at) + self.stall_timeout_s
                remaining = silent_until - time.monotonic()
                if remaining <= 0:
                    raise SourceError(f"{self.name}: nothing received for {self.stall_timeout_s:.0f} s")
                self._cond.wait(min(remaining, 1.0))
            if self._error is not None and self._latest_seq == self._returned_seq:
                raise SourceError(self._error)
            self._returned_seq = self._latest_seq
            return self._latest


class StreamReader:
    """A live source drained by a background thread; read() returns the newest frame."""

    def __init__(self, target: str | int, name: str, stall_timeout_s: float) -> None:
        self.name = name
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise SourceError(f"cannot connect to {name}")
        self._newest = NewestFrame(name, stall_timeout_s)
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name=f"capture-{name}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._closed:
            ok, image = self._capture.read()
            if not ok:
                self._newest.fail(f"{self.name}: stream ended or read failed")
                return
            self._newest.put(image)

    def read(self, interval_s: float) -> Image:
        image: Image = self._newest.take()
        return image

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2.0)  # a blocked read ends with the release below
        self._capture.release()
