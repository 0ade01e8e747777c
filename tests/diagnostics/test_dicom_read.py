"""diagnostics.dicom_read reads a file into the data set pydicom's `dcmread` gives: the same elements, raw or
read, the same file meta, preamble and encodings, or the same error. Over pydicom's sample files (every
transfer syntax, character sets, sequences of undefined length, encapsulated pixel data), the damaged files
the security tests keep, and copies of the samples cut short or with bytes overwritten."""

import io
import random
import struct
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data.data_manager import DATA_ROOT, DataTypes, external_data_sources
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from diagnostics import dicom, dicom_read
from tests.conftest import dicom_bytes

FUZZ_INPUTS = Path(__file__).resolve().parents[1] / "security" / "fuzz_inputs" / "dicom"
ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # (FFFE,E00D), length 0
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD)


def _part10_files() -> list[Path]:
    """The sample files of pydicom and pydicom-data on this machine (nothing downloaded) that are Part 10
    files (preamble and DICM), as an upload is."""
    names = [str(path) for path in Path(DATA_ROOT, "test_files").rglob("*.dcm")]
    for source in external_data_sources().values():
        names += source.get_paths("**/*.dcm", DataTypes.DATASET)
    files = []
    for name in sorted(names):
        with open(name, "rb") as file:
            if file.read(132)[128:] == b"DICM":
                files.append(Path(name))
    return files


SAMPLES = _part10_files()


def _read(reader: Any, data: bytes) -> tuple[str, Any]:
    """What a reader makes of the bytes: the data set, or the error's type and message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "read", reader(data)
        except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
            return "error", (type(exc), str(exc))


def _same(ours: tuple[str, Any], pydicoms: tuple[str, Any]) -> None:
    assert ours[0] == pydicoms[0], (ours, pydicoms)
    if ours[0] == "error":
        assert ours[1] == pydicoms[1]
        return
    mine, theirs = ours[1], pydicoms[1]
    _same_elements(mine, theirs)
    _same_elements(mine.file_meta, theirs.file_meta)
    assert mine.preamble == theirs.preamble
    assert mine.original_encoding == theirs.original_encoding
    assert mine.original_character_set == theirs.original_character_set


def _same_elements(mine: Dataset, theirs: Dataset) -> None:
    assert list(mine._dict) == list(theirs._dict)  # the same tags, in the order read
    for tag, element in theirs._dict.items():
        other = mine._dict[tag]
        assert type(other) is type(element), tag
        if isinstance(element, RawDataElement):
            assert other == element, tag  # tag, VR, length, value, offset, encoding
        else:  # read already: the character set, a sequence of undefined length (its items' elements raw)
            assert isinstance(other, DataElement), tag
            assert (other.VR, other.is_undefined_length) == (element.VR, element.is_undefined_length), tag
            if element.VR == "SQ":
                assert len(other.value) == len(element.value), tag
                for item, its in zip(other.value, element.value, strict=True):
                    _same_elements(item, its)
            else:
                assert other.value == element.value, tag


def _pydicom(data: bytes) -> pydicom.FileDataset:
    return pydicom.dcmread(io.BytesIO(data))


def _syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.get("TransferSyntaxUID"))


def test_the_samples_cover_what_the_reader_takes_and_what_it_leaves_to_pydicom() -> None:
    syntaxes = {_syntax(path) for path in SAMPLES}
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"} <= syntaxes
    assert "1.2.840.10008.1.2.4.50" in syntaxes and "1.2.840.10008.1.2.5" in syntaxes  # JPEG, RLE: encapsulated
    assert len(SAMPLES) > 100


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_a_sample_file_reads_as_pydicom_reads_it(path: Path) -> None:
    data = path.read_bytes()
    _same(_read(dicom_read.dataset_read, data), _read(_pydicom, data))


@pytest.mark.parametrize("path", sorted(FUZZ_INPUTS.iterdir()), ids=lambda path: path.name)
def test_a_damaged_file_fails_or_reads_as_with_pydicom(path: Path) -> None:
    data = path.read_bytes()
    _same(_read(dicom_read.dataset_read, data), _read(_pydicom, data))


@pytest.mark.parametrize("seed", range(8))
def test_samples_cut_short_overwritten_or_with_bytes_put_in_read_as_with_pydicom(seed: int) -> None:
    """A file cut anywhere, with a few bytes overwritten after its preamble (a length, a VR, a tag or a
    value), or with an element header or an item delimiter put in, makes both readers do the same thing."""
    chance = random.Random(seed)
    explicit_little = [path for path in SAMPLES if _syntax(path) != "1.2.840.10008.1.2"]
    for path in chance.sample(explicit_little, 12):
        data = path.read_bytes()
        start = dicom._meta_end(data)
        for _ in range(25):
            mutated = bytearray(data[: chance.randrange(start, len(data) + 1)] if chance.random() < 0.3 else data)
            for _ in range(chance.randint(1, 4)):
                if len(mutated) <= start:
                    break
                at = chance.randrange(start, len(mutated))
                if chance.random() < 0.2:
                    mutated[at:at] = chance.choice([ITEM_DELIMITER, SEQUENCE_DELIMITER, chance.randbytes(8)])
                else:
                    mutated[at] = chance.randrange(256)
            _same(_read(dicom_read.dataset_read, bytes(mutated)), _read(_pydicom, bytes(mutated)))


@pytest.mark.parametrize("delimiters", [1, 2, 3, 4])
def test_item_delimiters_before_the_data_set_read_as_with_pydicom(delimiters: int) -> None:
    """pydicom's file meta and command group readers each take one item delimiter as their end, and a third
    ends the data set before its first element: dcmread then reads no element at all, and neither may the
    header check (which would otherwise pass a data set that every later reader sees empty)."""
    data = _file_of(dicom_bytes("CT_small.dcm"), ITEM_DELIMITER * delimiters)
    ours, pydicoms = _read(dicom_read.dataset_read, data), _read(_pydicom, data)
    _same(ours, pydicoms)
    if delimiters >= 3:
        assert ours[0] == "read" and not ours[1]._dict
        with pytest.raises(dicom.DicomInvalid):
            dicom.header_read(data)


def test_sequences_nested_hundreds_deep_are_refused_with_a_reason() -> None:
    """pydicom reads nested sequences by recursion: a 14 KB file nests them past the interpreter's limit."""
    sequence = struct.pack("<HH2sHL", 0x0040, 0x0275, b"SQ", 0, 0xFFFFFFFF)  # Request Attributes Sequence
    item, item_end = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF), ITEM_DELIMITER
    sequence_end = SEQUENCE_DELIMITER
    nested = (sequence + item) * 400 + (item_end + sequence_end) * 400
    data = _file_of(dicom_bytes("CT_small.dcm"), b"", tail=nested)
    with pytest.raises(dicom.DicomInvalid, match="recursion"):
        dicom.header_read(data)


def _file_of(sample: bytes, before: bytes, tail: bytes = b"") -> bytes:
    """The sample with `before` put between its file meta group and its data set, `tail` after that."""
    start = dicom._meta_end(sample)
    return sample[:start] + before + sample[start:] + tail
