"""DICOM JSON (PS3.18 Annex F) for attributes the platform has indexed, written straight from database rows.

Searches answer a page of rows at a time: building a pydicom Dataset per row and calling `to_json_dict`
costs about 0.2 ms a row, a fifth of the time budget of a 100-row page, so rows are written here with
pydicom's data dictionary for the tags and value representations. Whole headers (metadata) go through
pydicom itself.
"""

from collections.abc import Iterable
from datetime import date
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

Json = dict[str, Any]


@cache
def tag_vr(keyword: str) -> tuple[str, str]:
    """The attribute's tag as DICOM JSON writes it ("0020000D") and its value representation."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}", dictionary_VR(tag)


def element(keyword: str, value: Any) -> tuple[str, Json]:
    """One attribute; None, "" and [] give the attribute with no value, as a zero-length element."""
    tag, vr = tag_vr(keyword)
    if value is None or value == "" or value == []:
        return tag, {"vr": vr}
    values = list(value) if isinstance(value, list | tuple) else [value]
    if vr == "PN":
        values = [{"Alphabetic": str(name)} for name in values]
    elif vr == "DA":
        values = [v.strftime("%Y%m%d") if isinstance(v, date) else str(v) for v in values]
    return tag, {"vr": vr, "Value": values}


def dataset(attributes: Iterable[tuple[str, Any]]) -> Json:
    """A DICOM JSON object from (keyword, value) pairs, in tag order."""
    return dict(sorted((element(keyword, value) for keyword, value in attributes), key=lambda item: item[0]))


def person_name(*components: str) -> str:
    """A PN value from family, given and middle names (Russian patronymic), without trailing carets."""
    return "^".join(components).rstrip("^")


class Links:
    """Retrieve URLs (0008,1190) of studies, series and instances under the service's root URL."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def study(self, study: str) -> str:
        return f"{self.root}/studies/{study}"

    def series(self, study: str, series: str) -> str:
        return f"{self.root}/studies/{study}/series/{series}"

    def instance(self, study: str, series: str, sop: str) -> str:
        return f"{self.root}/studies/{study}/series/{series}/instances/{sop}"
