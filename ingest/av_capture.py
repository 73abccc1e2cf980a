"""Frame readers over PyAV (FFmpeg) that decode only keyframes while the scene is static.

An idle camera still sends every frame, and a reader that decodes each one to look for
motion spent about half a busy camera's CPU on a scene where nothing happens (bench.ingest).
Demuxing a packet costs next to nothing; decoding it is the cost. So while the camera source
says it is idle (`keyframes_only`), packets that are not keyframes are read and dropped
undecoded, and motion is looked for on the keyframes alone. A frame between two keyframes
needs every frame since the last one, so when the camera becomes active again (motion, a
rule's or an operator's boost) full decoding starts at the next keyframe: the first
full-rate frame comes at most one keyframe interval (the camera's GOP, often 1-4 s) after
the switch. `skipped` counts the packets never decoded.

Files are read strided like `capture.FileReader` (the next frame at least `interval_s` of
video time after the last one); live streams (RTSP, UDP, TCP, HTTP) are drained by a thread
that keeps only the newest frame, like `capture.StreamReader`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ingest.capture import EndOfStream, Image, NewestFrame, SourceError

RTSP_OPTIONS = {"rtsp_transport": "tcp"}  # UDP loses packets on busy networks: a whole GOP smeared
MAX_PACKETS_WITHOUT_KEYFRAME = 1500
"""A stream that marks no keyframe in this many packets (a minute at 25 fps) is decoded whole:
waiting for a keyframe that never comes would leave an idle camera with no picture at all."""

log = logging.getLogger(__name__)


class KeyframeGate:
    """Which packets to decode: all while active; keyframes only while idle; after idling, none
    until the next keyframe (the frames in between reference frames never decoded). A decoder
    that reorders frames (B-frames) gives a keyframe's picture only after one or two more
    packets: those are decoded too, or the keyframe would come a whole keyframe interval late.
    A packet the decoder refuses (damaged on the wire or on disk) costs the frames up to the
    next keyframe, never the camera."""

    def __init__(self) -> None:
        self.keyframes_only = False
        self.synced = True  # the decoder has had every packet since its last keyframe
        self.awaiting_keyframe_picture = False
        self._keyframe_pts: int | None = None
        self._since_keyframe = 0
        self.unmarked = False  # no keyframe marked in MAX_PACKETS_WITHOUT_KEYFRAME: everything decoded
        self.skipped = 0

    def decode(self, packet: Any) -> bool:
        if packet.is_keyframe:
            self.synced = True  # a keyframe needs no frame before it
            self.awaiting_keyframe_picture = self.keyframes_only
            self._keyframe_pts = packet.pts
            self._since_keyframe = 0
            return True
        self._since_keyframe += 1
        if self._since_keyframe > MAX_PACKETS_WITHOUT_KEYFRAME and not self.unmarked:
            self.unmarked = True
            log.warning("a stream marked no keyframe in %d packets: decoding all of it", self._since_keyframe)
        if self.unmarked or (self.synced and (not self.keyframes_only or self.awaiting_keyframe_picture)):
            return True
        self.synced = False
        self.skipped += 1
        return False

    def frames(self, packet: Any) -> list[Any]:
        """The frames of a packet the gate lets through; none for one the decoder refuses."""
        if packet.size and not self.decode(packet):
            return []
        try:
            frames = list(packet.decode())  # the last, empty packet of a file flushes the decoder
        except av.FFmpegError:
            self.synced = False
            return []
        if any(f.pts is None or self._keyframe_pts is None or f.pts >= self._keyframe_pts for f in frames):
            self.awaiting_keyframe_picture = False  # not a picture from before it, held back until now
        return frames


def _video_stream(container: Any, name: str) -> Any:
    if not container.streams.video:
        container.close()
        raise SourceError(f"{name}: no video stream")
    stream = container.streams.video[0]
    # Slice threads only: frame threads hold each frame back until later packets come, and
    # while idle the packets after a keyframe are never decoded, so its frame came a GOP late.
    stream.thread_type = "SLICE"
    return stream


def _seconds(frame: Any, time_base: Fraction | None) -> float | None:
    if frame.pts is None or time_base is None:
        return None
    return float(frame.pts * time_base)


class _Gated:
    """A PyAV reader's decoding mode, as the camera source sets it, and what it saved."""

    _gate: KeyframeGate

    @property
    def keyframes_only(self) -> bool:
        return self._gate.keyframes_only

    @keyframes_only.setter
    def keyframes_only(self, value: bool) -> None:
        self._gate.keyframes_only = value

    @property
    def skipped(self) -> int:
        return self._gate.skipped


class AvFileReader(_Gated):
    """A video file, read strided; keyframes only while `keyframes_only` is set."""

    def __init__(self, path: Path, loop: bool) -> None:
        if not path.is_file():
            raise SourceError(f"video file not found: {path}")
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"FFmpeg cannot open {path}: {exc}") from exc
        self._stream = _video_stream(self._container, str(path))
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.native_fps = float(rate) if rate else 25.0
        self.path, self.loop = path, loop
        self._gate = KeyframeGate()
        self._frames = self._decoded()
        self.position_s: float | None = None  # video time of the frame last returned
        self._elapsed_s: float | None = None  # the same, counting every loop before this one
        self._loop_start_s = 0.0
        self._last_decoded_s = 0.0  # video time of the last frame decoded, returned or not

    def _decoded(self) -> Iterator[Any]:
        for packet in self._container.demux(self._stream):
            yield from self._gate.frames(packet)

    def read(self, interval_s: float) -> Image:
        half_frame = 0.5 / self.native_fps
        due = None if self._elapsed_s is None else self._elapsed_s + interval_s - half_frame
        empty_passes = 0  # passes through the file that decoded nothing
        while True:
            try:
                frame = next(self._frames, None)
            except (av.FFmpegError, OSError) as exc:  # the container itself is unreadable here
                raise SourceError(f"{self.path}: {exc}") from exc
            if frame is None:
                if not self.loop:
                    raise EndOfStream(str(self.path))
                empty_passes += 1
                if empty_passes > 1:
                    raise SourceError(f"no frames in {self.path}")
                self._rewind()
                continue
            empty_passes = 0
            at = _seconds(frame, self._stream.time_base)
            position = at if at is not None else self._last_decoded_s + 1 / self.native_fps
            self._last_decoded_s = position
            elapsed = self._loop_start_s + position
            if due is None or elapsed >= due:
                self.position_s, self._elapsed_s = position, elapsed
                image: Image = frame.to_ndarray(format="bgr24")
                return image

    def _rewind(self) -> None:
        """Loop: the video again from its start, its times following on from this pass."""
        self._loop_start_s += self._last_decoded_s + 1 / self.native_fps
        self._last_decoded_s = 0.0
        self._container.seek(0, stream=self._stream)
        self._stream.codec_context.flush_buffers()
        self._gate.synced = True  # a seek lands on a keyframe
        self._frames = self._decoded()

    def close(self) -> None:
        self._container.close()


class AvStreamReader(_Gated):
    """A live stream drained by a background thread; read() returns the newest frame."""

    def __init__(self, url: str, stall_timeout_s: float) -> None:
        self.name = url
        options = RTSP_OPTIONS if url.startswith(("rtsp://", "rtsps://")) else {}
        try:  # (open, read) timeouts: a silent camera ends the read instead of hanging it
            self._container = av.open(url, options=options, timeout=(stall_timeout_s, stall_timeout_s))
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot connect to {url}: {exc}") from exc
        self._stream = _video_stream(self._container, url)
        self._gate = KeyframeGate()
        self._newest = NewestFrame(url, stall_timeout_s)
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name=f"av-capture-{url}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        reason = f"{self.name}: stream ended"
        try:
            for packet in self._container.demux(self._stream):
                if self._closed:
                    return
                if not packet.size:
                    continue
                frames = self._gate.frames(packet)
                for frame in frames:
                    self._newest.put(frame)
                if not frames:
                    self._newest.alive()
        except (av.FFmpegError, OSError) as exc:
            reason = f"{self.name}: read failed: {exc}"
        self._newest.fail(reason)

    def read(self, interval_s: float) -> Image:
        image: Image = self._newest.take().to_ndarray(format="bgr24")  # only the frames sampled are converted
        return image

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2.0)
        self._container.close()
