"""The AI step of the imaging pipeline: time per image and its share of the pipeline (issue 7).

    .venv/bin/python bench/ai_bench.py [--images 20]      # DATABASE_URL as for the app; a scratch database

A real chest radiograph (pydicom-data's RG1_UNCR: CR, 1955 × 1841, 16-bit) goes through the pipeline
(services.instance_process: decode, render the frame and thumbnail, run the readers, mark ready) in this
process, once with no model enabled, once with the tests' model (brightness, 32 × 32 input, a heat map),
and once with a small convolutional network of the size X-ray classifiers take (224 × 224 input, four 3×3
convolutions of 16–64 channels, global pooling, a dense layer to 2 labels; random weights: the time, not
the answer, is measured). Prints per configuration the median pipeline time per image, the AI step's own
time (ai.instance_read on the first frame the pipeline decoded for the previews: resized and normalised,
inferred, stored) and the inference alone, and the AI step's share of the pipeline.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

import django

django.setup()

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def cnn_model(size: int = 224) -> bytes:
    """A small image classifier's shape with random weights: conv 3×3 stride 2 (16, 32, 64, 64 channels)
    with ReLU, global average pooling, a dense layer to 2 scores, sigmoid."""
    rng = np.random.default_rng(7)
    nodes, weights, channels, source = [], [], 1, "image"
    for layer, width in enumerate((16, 32, 64, 64)):
        kernel = rng.normal(0, 0.1, (width, channels, 3, 3)).astype(np.float32)
        weights += [
            numpy_helper.from_array(kernel, f"w{layer}"),
            numpy_helper.from_array(np.zeros(width, np.float32), f"b{layer}"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [source, f"w{layer}", f"b{layer}"], [f"c{layer}"], pads=[1, 1, 1, 1], strides=[2, 2]
            ),
            helper.make_node("Relu", [f"c{layer}"], [f"r{layer}"]),
        ]
        channels, source = width, f"r{layer}"
    weights += [
        numpy_helper.from_array(rng.normal(0, 0.1, (channels, 2)).astype(np.float32), "dense"),
        numpy_helper.from_array(np.zeros(2, np.float32), "dense_bias"),
        numpy_helper.from_array(np.array([1, channels], np.int64), "flat"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [source], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "flat"], ["features"]),
        helper.make_node("Gemm", ["features", "dense", "dense_bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    connection.settings_dict["TEST"]["NAME"] = "mh_ai_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    settings.MEDIA_ROOT = str(Path(settings.BASE_DIR) / "var" / "ai-bench-media")
    try:
        run(args.images)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def run(images: int) -> None:
    import io

    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from diagnostics import ai, dicom, services
    from diagnostics.models import AIModel, AIReading, Instance
    from hospitals.models import Hospital
    from mhospital.celery import app
    from patients.models import Patient
    from tests.diagnostics.onnx_models import brightness_model

    hospital = Hospital.objects.create(name="Tula", kind=Hospital.Kind.REGIONAL, region="Tula")
    patient = Patient.objects.create(
        hospital=hospital,
        record_number="AI-1",
        family_name="Бенч",
        given_name="Иван",
        birth_date="1960-01-01",
        sex="male",
    )
    sample = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
    app.conf.CELERY_TASK_ALWAYS_EAGER = True  # the first pass (no model yet) runs inline; then timed below
    pks = []
    for _ in range(images):
        sample.PatientID = patient.record_number
        sample.StudyInstanceUID, sample.SeriesInstanceUID = generate_uid(), generate_uid()
        sample.SOPInstanceUID = sample.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        out = io.BytesIO()
        sample.save_as(out, enforce_file_format=True)
        data = out.getvalue()
        stored = services.instance_store(data=data, hospital_id=hospital.pk, source=Instance.Source.STOW)
        pks.append(stored.instance.pk)
    models = {}
    for name, data, size in (
        ("test model (brightness, 32 × 32)", brightness_model(), 32),
        ("small CNN (224 × 224)", cnn_model(), 224),
    ):
        file, digest = ai.model_file_save(data)
        shape = ai.model_inspect(data=data, width=size, height=size, labels=2)
        models[name] = AIModel.objects.create(
            name=name,
            version="1",
            file=file,
            sha256=digest,
            modalities="CR",
            input_width=size,
            input_height=size,
            labels=[{"label": "a", "threshold": 0.5}, {"label": "b", "threshold": 0.5}],
            input_channels=shape.channels,
            has_heatmap=shape.has_heatmap,
            intended_use="bench",
        )

    print("| configuration | pipeline per image (median) | AI step | inference alone | AI share of the pipeline |")
    print("|---|---|---|---|---|")
    baseline = 0.0
    for label, enabled in (("no model", None), *((name, model) for name, model in models.items())):
        for model in models.values():
            model.hospitals.set([hospital] if model is enabled else [])
        pipeline, step = [], []
        for pk in pks:
            AIReading.objects.filter(instance_id=pk).delete()
            Instance.objects.filter(pk=pk).update(status=Instance.Status.QUEUED)
            started = time.perf_counter()
            services.instance_process(pk)
            pipeline.append(time.perf_counter() - started)
            if enabled is not None:
                AIReading.objects.filter(instance_id=pk).delete()
                instance = Instance.objects.select_related("series__study").get(pk=pk)
                with open(Path(settings.MEDIA_ROOT) / instance.file.name, "rb") as kept:
                    dataset = dicom.header_read(kept.read()).dataset
                first = next(dicom.frames_render(dataset)).pixels  # as the pipeline hands it to the readers
                started = time.perf_counter()
                ai.instance_read(instance, dataset, first)
                step.append(time.perf_counter() - started)
        median = statistics.median(pipeline)
        if enabled is None:
            baseline = median
            print(f"| {label} | {median * 1000:.0f} ms | — | — | — |")
            continue
        inference = statistics.median(AIReading.objects.filter(model=enabled).values_list("seconds", flat=True))
        ai_step = statistics.median(step)
        print(
            f"| {label} | {median * 1000:.0f} ms | {ai_step * 1000:.1f} ms | {inference * 1000:.2f} ms | "
            f"{ai_step / median:.0%} (pipeline {median / baseline:.2f}× the one without a model) |"
        )


if __name__ == "__main__":
    main()
