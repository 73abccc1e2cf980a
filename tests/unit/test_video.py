from pathlib import Path

import pytest

from ingest.frame_codec import decode_frame, encode_frame
from ingest.video import SourceError, VideoFileCamera, VideoFileConfig


async def test_video_file_is_sampled_at_the_configured_rate(vtest_avi: Path) -> None:
    camera = VideoFileCamera(VideoFileConfig(source_id="cam", path=vtest_avi, fps=2.0, loop=False,
                                             realtime=False, max_width=384))
    frames = [f async for f in camera.frames()]
    # 795 frames at 10 fps sampled at 2 fps: every 5th frame.
    assert len(frames) == 795 // 5
    assert [f.header.sequence for f in frames[:3]] == [0, 1, 2]
    first = decode_frame(encode_frame(frames[0]))
    assert (first.header.width, first.header.height) == (384, 288)
    assert first.jpeg.startswith(b"\xff\xd8")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        VideoFileCamera(VideoFileConfig(source_id="cam", path=tmp_path / "none.avi"))
