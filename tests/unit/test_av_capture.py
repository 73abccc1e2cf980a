"""PyAV readers (ingest/av_capture.py): the frames OpenCV decodes, at the same video times;
only keyframes decoded while the camera is idle, the rest demuxed and dropped; full decoding
again at once after a keyframe; looping, the end of a file, and files that are no video. The
videos are generated here with a known keyframe interval (H.264 and MPEG-4 part 2), besides
vtest.avi. The live stream reader is tested against a live MJPEG camera
(tests/integration/test_live_camera.py) and in the camera source below."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from ingest.av_capture import MAX_PACKETS_WITHOUT_KEYFRAME, AvFileReader, KeyframeGate
from ingest.camera import CameraSource
from ingest.capture import EndOfStream, FileReader, Image, NewestFrame, SourceError
from ingest.settings import CameraSourceSettings
from ingest.sink import MemorySink

FPS = 10


def video(path: Path, seconds: int, gop: int, codec: str = "libx264",
          moving_from_s: float | None = None, b_frames: int = 0) -> Path:
    """A grey street with a little noise; a bright square moves from `moving_from_s` on.
    Keyframes every `gop` frames, none in between (no scene-cut keyframes)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.codec_context.options = {"sc_threshold": "0", "bf": str(b_frames), "preset": "veryfast"}
        for index in range(seconds * FPS):
            image = np.full((240, 320, 3), 90, np.uint8) + rng.integers(0, 3, (240, 320, 3), dtype=np.uint8)
            if moving_from_s is not None and index / FPS >= moving_from_s:
                x = int(index * 6) % 280
                image[100:140, x:x + 40] = 250
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def positions(reader: AvFileReader, reads: int, interval_s: float) -> list[float]:
    found = []
    for _ in range(reads):
        reader.read(interval_s)
        assert reader.position_s is not None
        found.append(round(reader.position_s, 2))
    return found


def test_full_decoding_gives_opencv_s_frames_at_the_same_video_times(vtest_avi: Path) -> None:
    ours, opencv = AvFileReader(vtest_avi, loop=False), FileReader(vtest_avi, loop=False)
    try:
        ours.read(0.5)  # the first frame; OpenCV's first read is already a stride less one frame in
        for step in (0.4, 0.5, 0.5, 0.5, 0.5):
            image, expected = ours.read(step), opencv.read(0.5)
            assert ours.position_s == pytest.approx(opencv.position_s)
            assert np.array_equal(image, expected)
    finally:
        ours.close()
        opencv.close()


@pytest.mark.parametrize(("codec", "b_frames"), [("libx264", 0), ("libx264", 2), ("mpeg4", 0)])
def test_idle_decodes_keyframes_only(tmp_path: Path, codec: str, b_frames: int) -> None:
    """With B-frames the decoder gives a keyframe's picture one or two packets later: those are
    decoded too (not the next keyframe, a whole interval later)."""
    path = video(tmp_path / f"gop.{codec}.{b_frames}.mkv", seconds=6, gop=2 * FPS, codec=codec,
                 b_frames=b_frames)
    reader = AvFileReader(path, loop=False)
    reader.keyframes_only = True
    assert positions(reader, 3, 1.0) == [0.0, 2.0, 4.0]  # asked every second: the next keyframe
    assert 2 * (2 * FPS - 1 - b_frames) <= reader.skipped <= 2 * (2 * FPS - 1)  # never decoded
    reader.keyframes_only = False  # motion: the decoder has the keyframe just read
    assert positions(reader, 3, 0.1) == [4.1, 4.2, 4.3]
    with pytest.raises(EndOfStream):
        positions(reader, 30, 0.1)


@dataclass(frozen=True)
class Packet:
    is_keyframe: bool
    pts: int | None = None


def test_a_live_stream_decodes_again_from_the_next_keyframe() -> None:
    """A live stream's drain skips while idle; on motion the frames up to the next keyframe
    reference frames never decoded, so they are skipped too."""
    gate = KeyframeGate()
    key, delta = Packet(is_keyframe=True), Packet(is_keyframe=False)
    assert [gate.decode(p) for p in (key, delta, delta)] == [True, True, True]  # active: all
    gate.keyframes_only = True
    assert [gate.decode(p) for p in (delta, key)] == [False, True]
    gate.awaiting_keyframe_picture = False  # the keyframe's picture came out of the decoder
    assert gate.decode(delta) is False
    gate.keyframes_only = False  # motion, mid-GOP
    assert [gate.decode(p) for p in (delta, delta, key, delta)] == [False, False, True, True]
    assert gate.skipped == 4


def test_a_stream_that_marks_no_keyframe_is_decoded_whole() -> None:
    """Waiting for a keyframe that never comes would leave an idle camera without a picture."""
    gate = KeyframeGate()
    gate.keyframes_only = True
    gate.synced = False
    delta = Packet(is_keyframe=False)
    decided = [gate.decode(delta) for _ in range(MAX_PACKETS_WITHOUT_KEYFRAME + 2)]
    assert not any(decided[:MAX_PACKETS_WITHOUT_KEYFRAME]) and all(decided[MAX_PACKETS_WITHOUT_KEYFRAME:])
    assert gate.unmarked


def test_a_stream_that_flows_without_a_new_picture_has_not_stalled() -> None:
    """An idle camera with a long keyframe interval: packets come, no picture for a while."""
    newest = NewestFrame("cam", stall_timeout_s=0.3)
    newest.put("first")
    assert newest.take() == "first"
    feeding = threading.Event()

    def stream() -> None:
        for _ in range(8):  # 0.4 s of packets, longer than the stall timeout, then a picture
            newest.alive()
            time.sleep(0.05)
        newest.put("keyframe")
        feeding.set()

    threading.Thread(target=stream, daemon=True).start()
    assert newest.take() == "keyframe" and feeding.is_set()
    with pytest.raises(SourceError, match="nothing received"):
        newest.take()  # and then silence


def test_keyframes_are_the_frames_a_full_decode_gives(tmp_path: Path) -> None:
    path = video(tmp_path / "moving.mkv", seconds=4, gop=FPS, moving_from_s=0.0)
    idle, full = AvFileReader(path, loop=False), AvFileReader(path, loop=False)
    idle.keyframes_only = True
    for _ in range(3):
        image = idle.read(0.1)
        while full.position_s is None or full.position_s < (idle.position_s or 0) - 1e-6:
            expected = full.read(0.1)
        assert full.position_s == idle.position_s and np.array_equal(image, expected)


def test_a_looping_file_goes_on_and_a_file_without_video_is_refused(tmp_path: Path) -> None:
    reader = AvFileReader(video(tmp_path / "short.mkv", seconds=1, gop=5), loop=True)
    assert positions(reader, 4, 0.4) == [0.0, 0.4, 0.8, 0.2]  # 0.4 s after 0.8 is 0.2 into the next pass
    not_video = tmp_path / "notes.mkv"
    not_video.write_bytes(b"no video here" * 100)
    with pytest.raises(SourceError):
        AvFileReader(not_video, loop=True)
    with pytest.raises(SourceError):
        AvFileReader(tmp_path / "missing.mkv", loop=True)


class RecordingReader(AvFileReader):
    """Records the mode of every read the camera source makes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, loop=False)
        self.modes: list[bool] = []

    def read(self, interval_s: float) -> Image:
        self.modes.append(self.keyframes_only)
        return super().read(interval_s)


async def test_the_camera_reads_keyframes_while_static_and_everything_on_motion(tmp_path: Path) -> None:
    path = video(tmp_path / "street.mkv", seconds=12, gop=2 * FPS, moving_from_s=6.0)
    readers: list[RecordingReader] = []

    def factory(_: CameraSourceSettings) -> RecordingReader:
        readers.append(RecordingReader(path))
        return readers[-1]

    camera = CameraSource(CameraSourceSettings(id="cam", url=str(path), realtime=False, loop=False,
                                               fps=5, idle_fps=1, motion={"hold_s": 60}),
                          reader_factory=factory)
    await asyncio.wait_for(camera.run(MemorySink()), 60)
    modes, reader = readers[0].modes, readers[0]
    assert modes[:2] == [False, False]  # a new camera's scene is not known: compared in full first
    assert modes[2] is True  # static: keyframes only
    first_full = modes.index(False, 2)
    assert not any(modes[first_full:])  # motion seen on a keyframe: every frame from then on
    assert reader.skipped >= 2 * (2 * FPS - 1)  # the static part's frames between keyframes
    assert camera.stats.captured > first_full + 20  # full rate after the motion (5 per s)
    assert camera.health().packets_skipped == reader.skipped  # reported to the console


def test_damaged_bytes_cost_frames_never_the_reader(tmp_path: Path) -> None:
    """Garbage written over the middle of a file, and the file cut short: the reader gives the
    frames it can decode, then ends as a file does."""
    path = video(tmp_path / "damaged.mkv", seconds=4, gop=FPS, moving_from_s=0.0)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(range(256)) * 15 + bytes(160)
    path.write_bytes(bytes(data[: len(data) * 3 // 4]))
    reader = AvFileReader(path, loop=False)
    read = []
    with pytest.raises((EndOfStream, SourceError)):
        for _ in range(100):
            reader.read(0.1)
            read.append(reader.position_s)
    assert len(read) >= 10  # the frames before the damage at least
