"""Model specifications: one pydantic model per backend, a discriminated union on `type`.

A city swaps a model by changing its spec, not code: any backend takes a name, version,
file with sha256, device and threads, and the scheduling knobs (batch size, max wait).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Device = Literal["auto", "cpu", "cuda"]


class ModelBase(BaseModel):
    """A backend registers here, with its spec: `backend` names its Detector ("module:Class",
    imported only when a model of that type is built, so a worker loads only what it runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: ClassVar[str]

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: str = "1"
    device: Device = Field(default="auto", description="cuda when present (auto), else cpu")
    threads: int = Field(default=0, ge=0, description="intra-op threads; 0: the backend's default")
    min_score: float = Field(default=0.25, ge=0, le=1)
    batch_size: int = Field(default=4, ge=1, le=64, description="most frames per inference call")
    max_wait_ms: float = Field(default=20.0, ge=0, description="longest a frame waits for a batch to fill")


class FileModel(ModelBase):
    path: Path
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class OnnxYoloModel(FileModel):
    """YOLO-family ONNX export with the raw head (no NMS in the graph), on onnxruntime."""

    backend: ClassVar[str] = "detectors.onnx_yolo:OnnxYoloDetector"
    type: Literal["onnx-yolo"] = "onnx-yolo"
    iou: float = Field(default=0.45, gt=0, le=1)


class UltralyticsModel(FileModel):
    """Any model Ultralytics loads (.pt or .onnx), e.g. the YOLOv8s Normal/Fall model."""

    backend: ClassVar[str] = "detectors.ultralytics_backend:UltralyticsDetector"
    type: Literal["ultralytics"] = "ultralytics"
    iou: float = Field(default=0.45, gt=0, le=1)
    imgsz: int = Field(default=640, ge=32)


class TorchModel(FileModel):
    """A torch.export program (.pt2) or TorchScript module (.pt): float tensor [N,3,H,W] in
    0..1 (RGB) -> [N,K,6] of (x1, y1, x2, y2, score, class) in input pixels; rows with
    score 0 are padding. Export with a dynamic batch dimension to batch frames."""

    backend: ClassVar[str] = "detectors.torch_backend:TorchDetector"
    type: Literal["torch"] = "torch"
    classes: list[str] = Field(min_length=1)
    input_size: tuple[int, int] = (640, 640)  # height, width


class OpenCvDnnYoloModel(FileModel):
    """The same YOLO ONNX exports as onnx-yolo, on OpenCV's DNN module (no onnxruntime;
    OpenCL for integrated GPUs, CUDA where OpenCV has it)."""

    backend: ClassVar[str] = "detectors.opencv_dnn:OpenCvDnnYoloDetector"
    type: Literal["opencv-dnn-yolo"] = "opencv-dnn-yolo"
    iou: float = Field(default=0.45, gt=0, le=1)
    input_size: tuple[int, int] = Field(default=(640, 640), description="height, width of the export")
    opencl: bool = Field(default=False, description="run on OpenCL (an integrated GPU) when present")
    classes: list[str] | None = Field(default=None, description="default: the names in the file's metadata")


class OpenCvHogModel(ModelBase):
    """OpenCV's built-in HOG + linear SVM pedestrian detector: no model file at all."""

    backend: ClassVar[str] = "detectors.opencv_hog:OpenCvHogDetector"
    type: Literal["opencv-hog"] = "opencv-hog"
    win_stride: int = Field(default=8, ge=1)
    scale: float = Field(default=1.05, gt=1)
    max_width: int = Field(default=640, ge=64, description="frames are scaled down to this first")


ModelSpec = Annotated[
    OnnxYoloModel | UltralyticsModel | TorchModel | OpenCvDnnYoloModel | OpenCvHogModel,
    Field(discriminator="type")
]


class WhenSpec(BaseModel):
    """Cascade condition: run this step only where an earlier step found one of `classes`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    classes: list[str] = Field(min_length=1)
    min_score: float = Field(default=0.25, ge=0, le=1)
    regions: bool = Field(default=False, description="run on crops around those boxes, not the whole frame")
    pad: float = Field(default=0.15, ge=0, le=1, description="crop padding, as a share of the box size")


class ShadowSpec(BaseModel):
    """A candidate model run beside this step on a sample of frames; only its agreement is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    every: int = Field(default=10, ge=1, description="run on every Nth frame the step runs on")
    min_iou: float = Field(default=0.5, gt=0, le=1)


class StepSpec(BaseModel):
    """One model in a source's detection graph, with its filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    classes: list[str] = Field(default_factory=list, description="keep only these labels (empty: all)")
    min_score: float = Field(default=0.0, ge=0, le=1)
    min_area: float = Field(default=0.0, ge=0, description="smallest box area kept, in px²")
    stride: int = Field(default=1, ge=1, description="run on every Nth frame of the source")
    when: WhenSpec | None = None
    shadow: ShadowSpec | None = None
