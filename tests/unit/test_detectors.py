from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest

from detectors.base import DetectorError, Image
from detectors.config import OnnxYoloModel
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.model_file import ModelChecksumError
from detectors.onnx_yolo import OnnxYoloDetector
from ingest.events import FrameHeader
from ingest.frame_codec import Frame

SHA = "75cc3648650bdab6baac92fcff3627148405a9a15aca86ca7117b6d1ab478726"


@pytest.fixture(scope="module")
def yolo(yolo_onnx: Path) -> OnnxYoloDetector:
    detector = OnnxYoloDetector(OnnxYoloModel(name="yolov8n", version="1", path=yolo_onnx, sha256=SHA,
                                               device="cpu"))
    detector.load()
    return detector


def read(path: Path) -> Image:
    image = cv2.imread(str(path))
    assert image is not None
    return image


def frame(jpeg: bytes, width: int = 810, height: int = 1080) -> Frame:
    return Frame(FrameHeader(source_id="cam-1", time=datetime.now(UTC), sequence=0, width=width,
                             height=height), jpeg)


def test_yolo_finds_the_people_and_the_bus(yolo: OnnxYoloDetector, bus_jpg: Path) -> None:
    image = read(bus_jpg)
    [boxes] = yolo.infer_batch([image])
    labels = [b.label for b in boxes]
    assert labels.count("person") >= 3 and "bus" in labels
    bus = next(b for b in boxes if b.label == "bus")
    assert 0 <= bus.x1 < bus.x2 <= image.shape[1] and bus.score > 0.5
    assert len(yolo.classes) == 80 and yolo.classes[0] == "person"


def test_batches_give_the_same_boxes_as_single_images(yolo: OnnxYoloDetector, bus_jpg: Path) -> None:
    image = read(bus_jpg)
    single = yolo.infer_batch([image])[0]
    batch = yolo.infer_batch([image, cv2.flip(image, 1), image])
    assert [b.label for b in batch[0]] == [b.label for b in single] == [b.label for b in batch[2]]


def test_wrong_checksum_refuses_to_load(yolo_onnx: Path) -> None:
    with pytest.raises(ModelChecksumError):
        OnnxYoloDetector(OnnxYoloModel(name="x", version="1", path=yolo_onnx, sha256="0" * 64)).load()
    with pytest.raises(DetectorError):
        OnnxYoloDetector(OnnxYoloModel(name="x", version="1", path=Path("/nope.onnx"))).load()


async def test_runner_emits_deterministic_detections_and_rejects_corrupt_frames(
    yolo: OnnxYoloDetector, bus_jpg: Path
) -> None:
    runner = DetectionEngine({"yolov8n": ModelRuntime(yolo)})
    good = frame(bus_jpg.read_bytes())  # noqa: ASYNC240 - a small local file
    corrupt = frame(b"\xff\xd8 this is not really a jpeg")
    result = await runner.run([good, corrupt])
    assert [f for f, _ in result.rejected] == [corrupt]
    assert "corrupt JPEG" in result.rejected[0][1]
    [det] = result.detections
    assert det.frame_event_id == good.header.event_id and det.time == good.header.time
    assert det.count(frozenset({"person"})) >= 3
    again = await runner.run([good])
    assert again.detections[0].event_id == det.event_id


def test_opencv_dnn_runs_the_same_export_to_the_same_boxes(yolo: OnnxYoloDetector, yolo_onnx: Path,
                                                            bus_jpg: Path) -> None:
    """A second backend for the same file, as a plugin adds one: its module and its spec."""
    from detectors.config import OpenCvDnnYoloModel
    from detectors.model_file import onnx_metadata
    from detectors.registry import build_detector

    dnn = build_detector(OpenCvDnnYoloModel(name="yolov8n-dnn", path=yolo_onnx, sha256=SHA, device="cpu"))
    dnn.load()
    assert list(dnn.classes) == list(yolo.classes)  # read from the file's own metadata
    assert onnx_metadata(yolo_onnx)["names"].startswith("{0: 'person'")
    image = read(bus_jpg)
    [ours], [reference] = dnn.infer_batch([image]), yolo.infer_batch([image])
    assert [b.label for b in ours] == [b.label for b in reference]
    for mine, theirs in zip(ours, reference, strict=True):
        assert abs(mine.score - theirs.score) < 0.02
        assert abs(mine.x1 - theirs.x1) < 2 and abs(mine.y2 - theirs.y2) < 2


def test_opencv_dnn_refuses_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    from detectors.config import OpenCvDnnYoloModel
    from detectors.model_file import onnx_metadata
    from detectors.opencv_dnn import OpenCvDnnYoloDetector

    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"\xff" * 64)
    with pytest.raises(DetectorError):
        onnx_metadata(fake)
    with pytest.raises(DetectorError, match="cannot load"):
        OpenCvDnnYoloDetector(OpenCvDnnYoloModel(name="x", path=fake, device="cpu")).load()
