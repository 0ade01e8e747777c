"""`pydicom.dcmread` of a Part 10 file held in memory, with the same result, in less than half the time.

A STOW-RS request reads the header of every image it takes, and pydicom's reader was a quarter of the
request's CPU (bench/BENCHMARKS.md): for each element it calls its file's `read` and `tell`, decodes the
VR, checks options the request never sets (deferred reading, specific tags, a stop condition, debugging)
and yields through a generator. The explicit VR little endian encoding, which nearly every file uses, is
walked here instead over the bytes themselves, building pydicom's own `RawDataElement` for each element
exactly as its reader would. At the first element that takes anything else (a sequence or pixel data of
undefined length, an unknown VR, a value cut short, an item delimiter), the rest of the data set goes
through pydicom's own element reader from that element on; a file in any other encoding, or with a
command group, goes through `dcmread` whole. tests/diagnostics/test_dicom_read.py holds the two readers
to the same data set over pydicom's sample files, the security tests' damaged ones and mutated copies.
"""

import io
import struct
from typing import cast

import pydicom
from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import FileDataset
from pydicom.filereader import data_element_generator, read_partial
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR
from pydicom.values import convert_string

_HEAD = struct.Struct("<HH2sH").unpack_from  # group, element, VR, a 2-byte length
_LONG = struct.Struct("<L").unpack_from  # the 4-byte length after the VRs of EXPLICIT_VR_LENGTH_32
# The VRs pydicom's reader knows (its ENCODED_VR), by their two bytes.
_VRS = {str(vr.value).encode(default_encoding): str(vr.value) for vr in VR}
_LONG_VRS = frozenset(code for code, name in _VRS.items() if name in EXPLICIT_VR_LENGTH_32)
_NOT_EXPLICIT_LITTLE = (ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian)
_SPECIFIC_CHARACTER_SET = 0x00080005
_UNDEFINED = 0xFFFFFFFF
_ITEM_GROUP = 0xFFFE  # items and delimiters: none belongs at the top level of a data set
_ITEM_DELIMITER = b"\xfe\xff\x0d\xe0"  # (FFFE,E00D), little endian
_DEFLATED = DeflatedExplicitVRLittleEndian.encode()
_META_SCAN = 4096  # where the file meta group, and so its Transfer Syntax UID, ends in any sender's file


def dataset_read(data: bytes) -> FileDataset:
    """What `pydicom.dcmread(io.BytesIO(data))` returns (short of the interpreter's recursion limit, which
    pydicom meets in deeply nested sequences at a depth that depends on its caller's)."""
    if _DEFLATED in data[:_META_SCAN]:  # pydicom inflates the whole data set to read it: no walk to gain
        return pydicom.dcmread(io.BytesIO(data))
    fp = io.BytesIO(data)
    # The preamble, the file meta group and any command group, read by pydicom and stopped at the data
    # set's first element, where `fp` is left: unless fewer than 8 bytes follow, or an item delimiter,
    # which pydicom's element reader takes as the end without stepping back (and, after two such in
    # front of it, dcmread reads an empty data set). Those go to dcmread.
    try:
        dataset = read_partial(fp, stop_when=lambda _tag, _vr, _length: True)
    except Exception:  # noqa: BLE001 - a damaged preamble or file meta group: dcmread fails its own way
        return pydicom.dcmread(io.BytesIO(data))
    start = fp.tell()
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if (
        config.debugging
        or len(data) - start < 8
        or data[start - 8 : start - 4] == _ITEM_DELIMITER
        or syntax is None
        or syntax in _NOT_EXPLICIT_LITTLE
        or syntax in PrivateTransferSyntaxes
        or len(dataset._dict)  # a command group
        or not _explicit_vr_at(data, start)  # pydicom would switch to implicit VR
    ):
        del dataset, fp
        return pydicom.dcmread(io.BytesIO(data))
    try:
        elements = _elements_walk(data, start)
    except Exception:  # noqa: BLE001 - pydicom's reader failed on a damaged element: dcmread fails its own way
        del dataset, fp
        return pydicom.dcmread(io.BytesIO(data))
    dataset._dict.update(elements)
    # The encoding dcmread records; reading the character set converts that element, as dcmread's does.
    dataset.set_original_encoding(False, True, dataset._character_set)
    return dataset


def _explicit_vr_at(data: bytes, offset: int) -> bool:
    """pydicom's test of the first element (two capital letters where an explicit VR stands)."""
    return 0x40 < data[offset + 4] < 0x5B and 0x40 < data[offset + 5] < 0x5B


def _elements_walk(data: bytes, offset: int) -> dict[BaseTag, RawDataElement | DataElement]:
    """The data set's elements from `offset`, as pydicom's `read_dataset` keeps them."""
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    encoding: str | list[str] = default_encoding
    end = len(data)
    while offset + 12 <= end:
        group, number, code, length = _HEAD(data, offset)
        vr = _VRS.get(code)
        if vr is None or group == _ITEM_GROUP:
            break
        if code in _LONG_VRS:
            length = _LONG(data, offset + 8)[0]
            at = offset + 12
        else:
            at = offset + 8
        if length == _UNDEFINED or at + length > end:
            break
        tag = BaseTag(group << 16 | number)
        value = data[at : at + length] if length else cast(bytes | None, empty_value_for_VR(vr, raw=True))
        elements[tag] = RawDataElement(tag, vr, length, value, at, False, True)
        if tag == _SPECIFIC_CHARACTER_SET:  # the encoding of the sequences pydicom reads on from here
            encoding = convert_encodings(convert_string(data[at : at + length], True))
        offset = at + length
    if offset < end:
        rest = io.BytesIO(data)
        rest.seek(offset)
        for element in data_element_generator(rest, False, True, encoding=encoding):
            elements[element.tag] = element
    return elements
