"""Every backend on real inputs: Ultralytics (.pt), OpenCV HOG, TorchScript; the spec union."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from detectors.base import DetectorError, Image
from detectors.config import ModelSpec, OpenCvHogModel, TorchModel, UltralyticsModel
from detectors.registry import build_detector
from tests.conftest import asset

FALL_SHA = "5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d"


def frame_at(video: Path, seconds: float) -> Image:
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
    ok, image = capture.read()
    capture.release()
    assert ok
    return image


def test_specs_are_a_union_on_type() -> None:
    adapter: TypeAdapter[ModelSpec] = TypeAdapter(ModelSpec)
    hog = adapter.validate_python({"type": "opencv-hog", "name": "hog"})
    assert isinstance(hog, OpenCvHogModel)
    with pytest.raises(ValidationError, match=r"does not match any of the expected tags"):
        adapter.validate_python({"type": "tensorflow", "name": "x"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        adapter.validate_python({"type": "opencv-hog", "name": "hog", "pth": "x"})


def test_ultralytics_fall_model_sees_standing_people(bus_jpg: Path) -> None:
    detector = build_detector(UltralyticsModel(name="fall", path=asset("models/yolov8s-fall.pt"),
                                               sha256=FALL_SHA, device="cpu", min_score=0.4))
    detector.load()
    assert list(detector.classes) == ["Normal", "Fall"]
    image = cv2.imread(str(bus_jpg))
    assert image is not None
    [boxes] = detector.infer_batch([image])
    assert sum(1 for b in boxes if b.label == "Normal") >= 3
    assert all(0 <= b.x1 < b.x2 <= image.shape[1] for b in boxes)


def test_hog_finds_pedestrians_in_the_street_video(vtest_avi: Path) -> None:
    detector = build_detector(OpenCvHogModel(name="hog", min_score=0.5, max_width=768))
    detector.load()
    found = detector.infer_batch([frame_at(vtest_avi, s) for s in (1.0, 10.0, 30.0, 50.0)])
    assert all(len(boxes) >= 1 for boxes in found)
    assert {b.label for boxes in found for b in boxes} == {"person"}


class FixedBox(torch.nn.Module):
    """Returns one box covering the centre quarter of the input, score 0.9, class 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        row = torch.tensor([w / 4, h / 4, 3 * w / 4, 3 * h / 4, 0.9, 1.0])
        pad = torch.zeros(6)
        return torch.stack([row, pad]).unsqueeze(0).repeat(n, 1, 1)


def test_exported_torch_module_contract_and_scaling(tmp_path: Path) -> None:
    path = tmp_path / "fixed.pt2"
    program = torch.export.export(FixedBox(), (torch.zeros(2, 3, 320, 320),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=64)}})
    torch.export.save(program, str(path))
    detector = build_detector(TorchModel(name="fixed", path=path, classes=["car", "bike"],
                                         input_size=(320, 320), device="cpu"))
    detector.load()
    boxes = detector.infer_batch([np.zeros((480, 640, 3), dtype=np.uint8)] * 3)
    assert [(b.label, b.x1, b.y1, b.x2, b.y2, b.score) for b in boxes[2]] == [
        ("bike", 160.0, 120.0, 480.0, 360.0, 0.9)]
    bad = build_detector(TorchModel(name="bad", path=tmp_path / "missing.pt", classes=["x"]))
    with pytest.raises(DetectorError, match="not found"):
        bad.load()


def test_every_spec_names_a_backend_that_is_a_detector() -> None:
    import importlib
    from typing import get_args

    from detectors import config
    from detectors.base import Detector

    specs = get_args(get_args(ModelSpec)[0])
    declared = {value for value in vars(config).values() if isinstance(value, type)
                and issubclass(value, config.ModelBase) and "backend" in vars(value)}
    assert set(specs) == declared  # a spec left out of the union could never be configured
    for spec in specs:
        module, _, name = spec.backend.partition(":")
        assert issubclass(getattr(importlib.import_module(module), name), Detector), spec
    assert isinstance(build_detector(OpenCvHogModel(name="hog")), Detector)
