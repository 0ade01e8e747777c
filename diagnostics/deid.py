"""De-identified export of a study, for teaching cases: a zip streamed as it is made.

Each instance goes through the DICOM PS3.15 Basic Application Level Confidentiality Profile as dicognito
implements it (names, IDs, addresses and equipment replaced; dates and times shifted back by one offset for
the whole export, so intervals between studies survive; every instance UID remapped through one
Anonymizer, so the study, series and references stay consistent with each other), and then: private
tags removed, free-text comments and overlays (which can carry names) removed, the method recorded.

Only the header is changed. Pixels are not: an image whose header declares Burned In Annotation = YES
carries the patient's details in the picture itself, so it is never exported (the user is told, and may
export the rest). Ultrasound and screen captures often burn names in without declaring it; those are
exported with a warning in the archive and on the page.
"""

import io
import zipfile
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import date

import pydicom
from dicognito.anonymizer import Anonymizer
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pydicom.uid import UID

from diagnostics import viewing
from diagnostics.models import Instance, Study
from hospitals.errors import Refused

# Modalities whose images commonly have the patient's name typed into the picture by the device.
BURN_IN_PRONE = frozenset({"US", "IVUS", "SC", "XC", "ES", "OT", "GM", "SM", "DOC"})
# Free text the basic profile removes that dicognito leaves (it replaces structured values only).
_FREE_TEXT = (
    "PatientComments",
    "AdditionalPatientHistory",
    "ImageComments",
    "StudyComments",
    "RequestAttributesSequence",
    "InterpretationText",
    "TextComments",
    "ContentSequence",
)
_PIECE = 1 << 20  # bytes handed to the client at a time
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # no export time in the archive's entries


class ExportRefused(Refused):
    code = "export_refused"


@dataclass(frozen=True)
class ExportPlan:
    study: Study
    included: list[Instance]
    burned_in: list[Instance] = field(default_factory=list)  # declared YES: never exported
    unreadable: list[Instance] = field(default_factory=list)
    undeclared: list[Instance] = field(default_factory=list)  # included, in a modality prone to burn-in


def study_export_plan(*, study: Study) -> ExportPlan:
    """Which of the study's instances can go into a de-identified export, read from their headers."""
    instances = list(
        Instance.objects.filter(series__study=study)
        .select_related("series")
        .order_by("series__number", "series", "number", "pk")
    )
    included: list[Instance] = []
    burned_in: list[Instance] = []
    unreadable: list[Instance] = []
    undeclared: list[Instance] = []
    for instance in instances:
        hints = viewing.instance_hints(instance)
        if hints is None:
            unreadable.append(instance)
            continue
        if hints.burned_in == "YES":
            burned_in.append(instance)
            continue
        included.append(instance)
        if hints.burned_in != "NO" and instance.series.modality in BURN_IN_PRONE:
            undeclared.append(instance)
    return ExportPlan(study, included, burned_in, unreadable, undeclared)


def plan_check(plan: ExportPlan, *, without_burned_in: bool) -> None:
    """Raise ExportRefused with what to do, unless the plan may be exported as the user chose."""
    if plan.burned_in and not without_burned_in:
        raise ExportRefused(
            _(
                "%(count)s of the study's %(total)s images declare that the patient's details are burned into "
                "the picture (Burned In Annotation: YES). This export removes details from the header only, so "
                "those images cannot be exported. You can export the other %(rest)s images without them."
            )
            % {
                "count": len(plan.burned_in),
                "total": len(plan.burned_in) + len(plan.included) + len(plan.unreadable),
                "rest": len(plan.included),
            }
        )
    if not plan.included:
        raise ExportRefused(
            _(
                "Nothing in this study can be exported de-identified: every image either has the patient's "
                "details burned into the picture or cannot be read."
            )
        )


def dataset_deidentify(dataset: Dataset, *, anonymizer: Anonymizer) -> None:
    """Apply the basic profile to one dataset in place; one `anonymizer` per export keeps UIDs and the date
    shift consistent across its instances."""
    dataset.remove_private_tags()
    anonymizer.anonymize(dataset)
    for keyword in _FREE_TEXT:
        if keyword in dataset:
            del dataset[keyword]
    overlays = [element.tag for element in dataset if 0x6000 <= element.tag.group <= 0x60FF]
    for tag in overlays:
        del dataset[tag]  # overlays: graphics and text drawn over the image, names among them
    if "SourceApplicationEntityTitle" in dataset.file_meta:
        del dataset.file_meta.SourceApplicationEntityTitle
    dataset.LongitudinalTemporalInformationModified = "MODIFIED"
    methods = []
    for value, meaning in (
        ("113100", "Basic Application Confidentiality Profile"),
        ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ):
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
        methods.append(code)
    dataset.DeidentificationMethodCodeSequence = methods


class _Sink(io.RawIOBase):
    """A write-only stream the zip is written into and drained from, piece by piece."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pieces.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data, self._pieces = b"".join(self._pieces), []
        return data


def study_export_stream(*, plan: ExportPlan) -> Generator[bytes, None, None]:
    """The zip, as pieces of at most about a megabyte: one instance is in memory at a time (read, then
    written de-identified), never the study."""
    anonymizer = Anonymizer()
    sink = _Sink()
    failed: list[Instance] = []
    series_folders: dict[int, str] = {}
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for instance in plan.included:
            folder = series_folders.setdefault(
                instance.series_id,
                f"series-{len(series_folders) + 1:02d}-{instance.series.modality or 'OT'}",
            )
            try:
                with default_storage.open(instance.file.name, "rb") as stored:
                    dataset = pydicom.dcmread(stored)
                dataset_deidentify(dataset, anonymizer=anonymizer)
                out = io.BytesIO()
                dataset.save_as(out, enforce_file_format=True)
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                failed.append(instance)  # named in the README; the rest of the export goes on
                continue
            syntax = UID(str(dataset.file_meta.get("TransferSyntaxUID", "")))
            del dataset
            info = zipfile.ZipInfo(f"{folder}/image-{len(archive.infolist()) + 1:04d}.dcm", date_time=_ZIP_TIME)
            # Compressed pixel data does not shrink further; uncompressed pixels and headers do.
            info.compress_type = zipfile.ZIP_STORED if syntax.is_compressed else zipfile.ZIP_DEFLATED
            data = out.getbuffer()
            with archive.open(info, "w", force_zip64=len(data) > 2**31) as entry:
                for start in range(0, len(data), _PIECE):
                    entry.write(data[start : start + _PIECE])
                    yield sink.drain()
            del data
            out.close()
            yield sink.drain()
        readme = zipfile.ZipInfo("README.txt", date_time=_ZIP_TIME)
        readme.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(readme, _readme(plan, failed))
    yield sink.drain()


def _readme(plan: ExportPlan, failed: list[Instance]) -> str:
    lines = [
        _("De-identified imaging study (teaching case)"),
        "",
        _(
            "Exported from M-Hospital on %(date)s with the DICOM PS3.15 Basic Application Level Confidentiality "
            "Profile as implemented by dicognito: names, IDs, addresses and institutions replaced; dates and "
            "times shifted back by one offset for the whole export; UIDs replaced consistently within this "
            "export; private tags, free-text comments and overlays removed. The pixel data is unchanged."
        )
        % {"date": date.isoformat(timezone.localdate())},
        "",
        _("Look through every image before you share it: details typed into the picture are not removed."),
    ]
    if plan.undeclared:
        lines += [
            "",
            _(
                "%(count)s images are ultrasound or screen captures that do not say whether the patient's details "
                "are burned into the picture; such devices often put the name there. Check them frame by frame."
            )
            % {"count": len(plan.undeclared)},
        ]
    left_out = len(plan.burned_in) + len(plan.unreadable) + len(failed)
    if left_out:
        lines += [
            "",
            _(
                "Left out: %(burned)s images with the patient's details burned into the picture, %(unreadable)s "
                "that could not be read or de-identified."
            )
            % {"burned": len(plan.burned_in), "unreadable": len(plan.unreadable) + len(failed)},
        ]
    return "\n".join(lines) + "\n"
