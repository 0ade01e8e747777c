"""What the header check relies on in pydicom: converting a value of an explicit VR of its own fails only for a
binary number whose length is not a whole number of values. Should a pydicom release start refusing other
bytes, these fail, and diagnostics.dicom._values_check must convert those VRs again."""

import warnings
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.charset import convert_encodings
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.errors import BytesLengthException
from pydicom.tag import Tag
from pydicom.values import convert_value

from diagnostics import dicom

# Specific Character Sets clinics send, and one nobody knows, as pydicom turns them into encodings.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    CHARSETS = [
        convert_encodings(terms)
        for terms in (
            [""],
            ["ISO_IR 100"],
            ["ISO_IR 144"],
            ["ISO_IR 192"],
            ["ISO 2022 IR 6", "ISO 2022 IR 87"],
            ["GB18030"],
            ["NO SUCH CHARSET"],
        )
    ]
TEXT_VRS = sorted(dicom._TEXT_VRS)
# pydicom's own samples of what the readers meet: implicit VR, big endian, Japanese and Russian character
# sets, sequences of undefined length, ultrasound, RT.
SAMPLES = (
    "CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "US1_UNCR.dcm", "examples_ybr_color.dcm",
    "chrH31.dcm", "chrRuss.dcm", "chrX1.dcm", "rtplan.dcm", "emri_small_jpeg_2k_lossless.dcm", "ExplVR_BigEnd.dcm",
)  # fmt: skip


def _raw(vr: str, value: bytes, little_endian: bool) -> RawDataElement:
    return RawDataElement(Tag(0x0011, 0x1010), vr, len(value), value, 0, False, little_endian)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vr=st.sampled_from(TEXT_VRS),
    value=st.binary(max_size=96),
    charset=st.sampled_from(CHARSETS),
    little_endian=st.booleans(),
)
def test_pydicom_converts_any_bytes_of_a_text_or_byte_vr(
    vr: str, value: bytes, charset: list[str], little_endian: bool
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_value(vr, _raw(vr, value, little_endian), charset)


@settings(max_examples=400, deadline=None)
@given(vr=st.sampled_from(sorted(dicom._NUMBER_SIZES)), value=st.binary(max_size=40), little_endian=st.booleans())
def test_pydicom_refuses_a_number_exactly_when_its_length_is_not_whole_values(
    vr: str, value: bytes, little_endian: bool
) -> None:
    whole = len(value) % dicom._NUMBER_SIZES[vr] == 0
    try:
        convert_value(vr, _raw(vr, value, little_endian), ["iso8859"])
    except BytesLengthException:
        assert not whole
    else:
        assert whole


def test_the_check_covers_the_vrs_clinics_use() -> None:
    assert {"US", "SS", "UL", "SL", "FL", "FD"} <= set(dicom._NUMBER_SIZES)
    assert {"PN", "LO", "SH", "DS", "IS", "DA", "TM", "UI", "CS", "OB", "OW"} <= set(TEXT_VRS)
    assert not {"SQ", "UN"} & dicom._PLAIN_VRS


# Top-level attributes the request path reads with dicom.value_of.
KEYWORDS = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "SOPClassUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
    "ReferringPhysicianName", "Modality", "BodyPartExamined", "SeriesDescription", "SeriesNumber",
    "InstanceNumber", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated",
    "PhotometricInterpretation", "PixelSpacing", "ImagerPixelSpacing", "SmallestImagePixelValue",
    "SequenceOfUltrasoundRegions",
)  # fmt: skip


@pytest.mark.parametrize("name", SAMPLES)
def test_value_of_reads_what_dataset_get_reads(name: str) -> None:
    """Implicit and explicit VR, big endian, other character sets, sequences and "US or SS" values alike."""
    path = get_testdata_file(name) or next(path for path in get_charset_files(name) if path.endswith(name))
    fast, slow = pydicom.dcmread(path, force=True), pydicom.dcmread(path, force=True)
    for keyword in KEYWORDS:
        try:
            expected = slow.get(keyword)
        except Exception as exc:  # noqa: BLE001 - a damaged sample fails the same way both ways
            with pytest.raises(type(exc)):
                dicom.value_of(fast, keyword)
            continue
        assert dicom.value_of(fast, keyword) == expected, keyword


def test_value_of_reads_values_left_in_the_file_and_repeating_groups_as_dataset_get_does() -> None:
    deferred = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")), defer_size=16)
    for keyword in ("PatientName", "StudyInstanceUID", "SOPClassUID", "PixelData", "Rows"):
        assert dicom.value_of(deferred, keyword) == deferred.get(keyword), keyword
    overlay = pydicom.dcmread(str(get_testdata_file("examples_overlay.dcm")))
    assert dicom.value_of(overlay, "OverlayRows") == overlay.get("OverlayRows")  # no KeyError: found by pattern
    assert dicom.value_of(overlay, "NoSuchKeyword") is None


def test_ultrasound_pixel_spacing_comes_from_the_region_calibration() -> None:
    data = Path(str(get_testdata_file("examples_ybr_color.dcm"))).read_bytes()
    header = dicom.header_read(data)
    region = header.dataset.SequenceOfUltrasoundRegions[0]
    assert "PixelSpacing" not in header.dataset
    assert header.pixel_spacing() == f"{abs(region.PhysicalDeltaY) * 10:g}\\{abs(region.PhysicalDeltaX) * 10:g}"
