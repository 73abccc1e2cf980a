"""The YOLO-family raw head, whatever runs the network: letterboxing a frame into the
model's input, decoding its (4 + classes) x anchors output into boxes with NMS, and the
class names an Ultralytics export keeps in its metadata. Pure NumPy and OpenCV, so every
backend that runs such an export (onnxruntime, OpenCV DNN) decodes it the same way."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectors.base import DetectorError, Image
from detectors.events import Box
from detectors.model_file import onnx_metadata

MAX_BOXES = 300


@dataclass(frozen=True)
class Letterbox:
    ratio: float
    pad_x: float
    pad_y: float


def letterbox(image: Image, size: tuple[int, int]) -> tuple[np.ndarray[Any, Any], Letterbox]:
    """The frame scaled into `size` (height, width) keeping its aspect, padded grey: a
    float32 CHW RGB tensor in 0..1, and how to map boxes back."""
    target_h, target_w = size
    height, width = image.shape[:2]
    ratio = min(target_w / width, target_h / height)
    new_w, new_h = round(width * ratio), round(height * ratio)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (target_w - new_w) / 2, (target_h - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = cv2.copyMakeBorder(
        resized, top, target_h - new_h - top, left, target_w - new_w - left,
        cv2.BORDER_CONSTANT, value=(114, 114, 114),
    )
    tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).transpose(2, 0, 1).astype(np.float32)
    tensor /= 255.0
    return tensor, Letterbox(ratio, left, top)


def decode(raw: np.ndarray[Any, Any], box: Letterbox, width: int, height: int, classes: list[str],
           min_score: float, iou: float) -> list[Box]:
    """One image's raw output, (4 + classes, anchors), to boxes in the frame's pixels."""
    predictions = raw.T  # (N, 4 + classes)
    scores_all = predictions[:, 4:]
    class_ids = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(len(class_ids)), class_ids]
    keep = scores >= min_score
    if not keep.any():
        return []
    xywh, scores, class_ids = predictions[keep, :4], scores[keep], class_ids[keep]
    x1 = (xywh[:, 0] - xywh[:, 2] / 2 - box.pad_x) / box.ratio
    y1 = (xywh[:, 1] - xywh[:, 3] / 2 - box.pad_y) / box.ratio
    w, h = xywh[:, 2] / box.ratio, xywh[:, 3] / box.ratio
    rects = np.stack([x1, y1, w, h], axis=1)
    chosen = cv2.dnn.NMSBoxesBatched(rects.tolist(), scores.tolist(), class_ids.tolist(), min_score, iou)
    result = []
    for i in np.asarray(chosen).reshape(-1)[:MAX_BOXES]:
        class_id = int(class_ids[i])
        result.append(Box(
            label=classes[class_id] if class_id < len(classes) else str(class_id),
            class_id=class_id,
            score=round(float(scores[i]), 4),
            x1=round(float(np.clip(x1[i], 0, width)), 1),
            y1=round(float(np.clip(y1[i], 0, height)), 1),
            x2=round(float(np.clip(x1[i] + w[i], 0, width)), 1),
            y2=round(float(np.clip(y1[i] + h[i], 0, height)), 1),
        ))
    return result


def class_names(metadata: dict[str, str]) -> list[str]:
    """Ultralytics exports store {id: name} as a Python literal in the 'names' metadata."""
    text = metadata.get("names")
    if not text:
        return []
    names = ast.literal_eval(text)
    if not isinstance(names, dict):
        raise DetectorError("model metadata 'names' is not a mapping")
    return [str(names[i]) for i in sorted(names)]


def export_classes(path: Path) -> list[str] | None:
    """The class names an export keeps in its metadata, read without loading the model;
    None where the file cannot be read or names none (loading it will tell)."""
    try:
        return class_names(onnx_metadata(path)) or None
    except (OSError, DetectorError):
        return None
