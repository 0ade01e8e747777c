"""AI readers: checking a model file a platform admin uploads, running the enabled models on each new image
in the imaging pipeline, and the specialist's decision on each finding.

A model is an ONNX file run with onnxruntime on the CPU. It takes one image batch (1, channels, height,
width) of float32 and gives one score per label as its first output and, optionally, a heat map (any output
after the first that is a 2-D array once its unit dimensions are dropped). The image it is given is the one
the viewer shows first (the display-ready first frame: VOI window, MONOCHROME1 inverted), resized to the
declared input size, scaled to 0–1 and normalised as (x - mean) / std.
"""

import csv
import hashlib
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image
from pydicom import Dataset

from diagnostics.models import AIFinding, AIModel, AIReading, Instance
from diagnostics.services import storage_keep_once, storage_overwrite
from hospitals.audit import Action, audit_record
from hospitals.models import User

log = logging.getLogger(__name__)

SESSIONS_KEPT = 8  # loaded models a worker process keeps (a model is loaded once, not per image)
_sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
_sessions_lock = threading.Lock()


class ModelBroken(Exception):
    """A registered model could not read an image (its file is gone or damaged, or it misbehaves)."""


@dataclass(frozen=True)
class ModelShape:
    channels: int
    has_heatmap: bool


def _session_from(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # The worker runs several tasks side by side; one thread each keeps a model from taking every core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def model_inspect(*, data: bytes, width: int, height: int, labels: int) -> ModelShape:
    """Check that `data` is an ONNX model that takes an image of the declared size and gives one score per
    label, by loading it and running it once on a blank image; a ValidationError says what is wrong."""
    try:
        session = _session_from(data)
    except Exception as exc:  # noqa: BLE001 (onnxruntime has its own class for each way a file fails to load)
        raise ValidationError(
            _("This file is not an ONNX model that onnxruntime can load (%(reason)s)."),
            code="not_onnx",
            params={"reason": _reason(exc)},
        ) from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValidationError(
            _("The model must take one input, the image; it takes %(count)s."), params={"count": len(inputs)}
        )
    shape, kind = list(inputs[0].shape), inputs[0].type
    if kind != "tensor(float)" or len(shape) != 4:
        raise ValidationError(
            _(
                "The model's input must be float32 images shaped (batch, channels, height, width); it is "
                "%(kind)s %(shape)s."
            ),
            code="input_shape",
            params={"kind": kind, "shape": shape},
        )
    channels = shape[1] if isinstance(shape[1], int) else 1
    if channels not in (1, 3):
        raise ValidationError(
            _("The model's images must have 1 (grey) or 3 (RGB) channels; it asks for %(channels)s."),
            code="input_shape",
            params={"channels": channels},
        )
    model_size = [dim if isinstance(dim, int) else None for dim in shape[2:]]
    if any(dim is not None and dim != declared for dim, declared in zip(model_size, (height, width), strict=True)):
        raise ValidationError(
            _(
                "The model takes images of %(model)s pixels (height × width), but the form says %(declared)s. "
                "Correct the input size."
            ),
            code="input_shape",
            params={"model": " × ".join(str(d or "any") for d in model_size), "declared": f"{height} × {width}"},
        )
    try:
        outputs = session.run(None, {inputs[0].name: np.zeros((1, channels, height, width), np.float32)})
    except Exception as exc:  # noqa: BLE001 (onnxruntime: a shape it cannot take, an operator it lacks)
        raise ValidationError(
            _("The model fails on a blank image of the declared size (%(reason)s)."),
            code="input_shape",
            params={"reason": _reason(exc)},
        ) from None
    scores = np.asarray(outputs[0]).reshape(-1)
    if scores.size != labels:
        raise ValidationError(
            _("The model gives %(scores)s scores, but %(labels)s labels are listed: list one label per score."),
            code="labels",
            params={"scores": scores.size, "labels": labels},
        )
    return ModelShape(channels=channels, has_heatmap=any(_heatmap_values(out) is not None for out in outputs[1:]))


def _reason(exc: Exception) -> str:
    return str(exc).replace("[ONNXRuntimeError] : ", "")[:300]


def model_file_save(data: bytes) -> tuple[str, str]:
    """Store a model file once under a name made from its SHA-256; returns (storage name, hash)."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"ai-models/{digest[:2]}/{digest}.onnx"
    storage_keep_once(name, data)
    return name, digest


def models_for(instance: Instance) -> list[AIModel]:
    """The models enabled for the image's hospital that read its modality and body part."""
    series = instance.series
    modality, body_part = series.modality.upper(), series.body_part.strip().upper()
    enabled = AIModel.objects.filter(hospitals=instance.hospital_id)
    return [
        model
        for model in enabled
        if modality in model.modality_list and (not model.body_part or model.body_part.strip().upper() == body_part)
    ]


def instance_read(instance: Instance, dataset: Dataset, image: np.ndarray | None) -> None:
    """The imaging pipeline's reader (settings.IMAGING_READERS): each matching model reads the image (its
    first frame as displayed, which the pipeline has just decoded) once. A model that fails is reported on
    the model (its admin page shows why) and skipped; the image itself goes on to be ready."""
    if image is None:
        return  # no pixel data
    done = set(AIReading.objects.filter(instance=instance).values_list("model_id", flat=True))
    models = [model for model in models_for(instance) if model.pk not in done]
    for model in models:
        try:
            reading_make(model=model, instance=instance, image=image)
        except ModelBroken as exc:
            model_fault(model, str(exc))


def model_fault(model: AIModel, reason: str) -> None:
    log.warning("AI model %s (%s) skipped: %s", model, model.pk, reason)
    AIModel.objects.filter(pk=model.pk).update(last_error=reason[:1000], last_error_at=timezone.now())


def _session(model: AIModel) -> ort.InferenceSession:
    with _sessions_lock:
        session = _sessions.get(model.sha256)
        if session is not None:
            _sessions.move_to_end(model.sha256)
            return session
    try:
        with default_storage.open(model.file.name, "rb") as stored:
            data = stored.read()
    except OSError as exc:
        raise ModelBroken(_("The model file cannot be read (%(reason)s); upload it again.") % {"reason": exc}) from None
    if hashlib.sha256(data).hexdigest() != model.sha256:
        raise ModelBroken(_("The model file is not the one that was checked at upload (damaged); upload it again."))
    try:
        session = _session_from(data)
    except Exception as exc:  # noqa: BLE001 (see model_inspect)
        raise ModelBroken(_("The model file cannot be loaded (%(reason)s).") % {"reason": _reason(exc)}) from None
    with _sessions_lock:
        _sessions[model.sha256] = session
        while len(_sessions) > SESSIONS_KEPT:
            _sessions.popitem(last=False)
    return session


def preprocess(image: np.ndarray, model: AIModel) -> np.ndarray:
    """The display-ready image (uint8, grey or RGB) as the model's input batch of one."""
    picture = Image.fromarray(image).convert("L" if model.input_channels == 1 else "RGB")
    picture = picture.resize((model.input_width, model.input_height), Image.Resampling.BILINEAR)
    values = (np.asarray(picture, dtype=np.float32) / 255.0 - model.mean) / model.std
    planes = values[np.newaxis] if values.ndim == 2 else values.transpose(2, 0, 1)
    return np.ascontiguousarray(planes[np.newaxis], dtype=np.float32)


def _probabilities(scores: np.ndarray, activation: str) -> np.ndarray:
    if activation == AIModel.Activation.SIGMOID:
        return 1.0 / (1.0 + np.exp(-scores))
    if activation == AIModel.Activation.SOFTMAX:
        shifted = np.exp(scores - scores.max())
        return shifted / shifted.sum()
    return scores


def reading_make(*, model: AIModel, instance: Instance, image: np.ndarray) -> AIReading | None:
    """Run `model` on the image and keep its reading; None when another run kept one first."""
    session = _session(model)
    batch = preprocess(image, model)
    started = time.perf_counter()
    try:
        outputs = session.run(None, {session.get_inputs()[0].name: batch})
    except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own classes)
        raise ModelBroken(_("The model failed on an image (%(reason)s).") % {"reason": _reason(exc)}) from None
    seconds = time.perf_counter() - started
    scores = _probabilities(np.asarray(outputs[0], dtype=np.float64).reshape(-1), model.activation)
    if scores.size != len(model.labels):
        raise ModelBroken(
            _("The model gave %(scores)s scores for %(labels)s labels.")
            % {"scores": scores.size, "labels": len(model.labels)}
        )
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise ModelBroken(
            _("The model's outputs are not probabilities (%(low).3g to %(high).3g): set its output activation.")
            % {"low": scores.min(), "high": scores.max()}
        )
    heatmap = next((values for out in outputs[1:] if (values := _heatmap_values(out)) is not None), None)
    with transaction.atomic():
        reading, created = AIReading.objects.get_or_create(
            instance=instance, model=model, defaults={"seconds": seconds}
        )
        if not created:
            return None
        if heatmap is not None:
            reading.heatmap = f"{instance.preview_folder}/ai-{model.pk}.png"
            storage_overwrite(reading.heatmap, heatmap_png(heatmap))
            reading.save(update_fields=["heatmap"])
        AIFinding.objects.bulk_create(
            AIFinding(reading=reading, label=entry["label"], probability=float(p), threshold=float(entry["threshold"]))
            for entry, p in zip(model.labels, scores, strict=True)
        )
    return reading


def _heatmap_values(output: Any) -> np.ndarray | None:
    values = np.squeeze(np.asarray(output, dtype=np.float32))
    return values if values.ndim == 2 and min(values.shape) > 1 and np.all(np.isfinite(values)) else None


def heatmap_png(values: np.ndarray) -> bytes:
    """A heat map as a transparent overlay: clear where the model saw nothing, red to yellow as it rises."""
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 1:
        values = (values - low) / max(high - low, 1e-6)
    level = np.clip(values, 0, 1)
    rgba = np.zeros((*level.shape, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (level * 255).astype(np.uint8)
    rgba[..., 3] = (np.sqrt(level) * 200).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    return out.getvalue()


@transaction.atomic
def finding_decide(*, finding: AIFinding, decision: str, by: User, request: HttpRequest | None) -> AIFinding:
    """The specialist's verdict on one finding (it may be changed; every change is audited)."""
    if decision not in (AIFinding.Decision.CONFIRMED, AIFinding.Decision.REJECTED):
        raise ValidationError(_("Choose “confirm” or “reject”."), code="decision")
    finding.decision = decision
    finding.decided_by = by
    finding.decided_at = timezone.now()
    finding.save(update_fields=["decision", "decided_by", "decided_at"])
    reading = finding.reading
    audit_record(
        request=request,
        user=by,
        action=Action.UPDATE,
        obj=finding,
        patient_id=reading.instance.series.study.patient_id,
        detail=f"AI finding {decision}: {finding.label} {finding.probability:.3f} by {reading.model}",
    )
    return finding


DECISION_COLUMNS = (
    "model",
    "version",
    "hospital",
    "study_instance_uid",
    "sop_instance_uid",
    "modality",
    "body_part",
    "label",
    "probability",
    "threshold",
    "model_says",
    "decision",
    "decided_by",
    "decided_at",
    "read_at",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def decisions_csv(model: AIModel) -> Iterator[str]:
    """Every finding of the model and the specialists' decisions, as CSV lines for model evaluation. No
    patient's name or record number: an image is named by its DICOM UIDs."""
    writer = csv.writer(_Echo())
    yield writer.writerow(DECISION_COLUMNS)
    findings = (
        AIFinding.objects.filter(reading__model=model)
        .select_related("reading__instance__series__study__hospital", "decided_by")
        .order_by("reading__created_at", "reading_id", "pk")
    )
    for finding in findings.iterator(chunk_size=500):
        reading = finding.reading
        series = reading.instance.series
        yield writer.writerow(
            (
                model.name,
                model.version,
                series.study.hospital.name,
                series.study.study_instance_uid,
                reading.instance.sop_instance_uid,
                series.modality,
                series.body_part,
                finding.label,
                f"{finding.probability:.4f}",
                f"{finding.threshold:.4f}",
                "positive" if finding.positive else "negative",
                finding.decision,
                finding.decided_by.get_username() if finding.decided_by else "",
                finding.decided_at.isoformat() if finding.decided_at else "",
                reading.created_at.isoformat(),
            )
        )
