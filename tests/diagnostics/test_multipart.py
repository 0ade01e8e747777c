"""multipart/related bodies (STOW-RS): the parts are found alike in a body held in memory, searched where it
lies, and in one read from disk a chunk at a time, wherever the chunks end; a body cut short is refused."""

import io
import tempfile
from typing import BinaryIO

import pytest

from diagnostics.dicomweb import multipart
from diagnostics.dicomweb.multipart import MultipartInvalid, part_content, parts_read

BOUNDARY = "b0undary"
KINDS = ["in memory", "on disk"]


def _body(contents: list[bytes]) -> bytes:
    return b"".join(multipart.multipart_write([("application/dicom", [content]) for content in contents], BOUNDARY))


def _kept(kind: str, data: bytes) -> BinaryIO:
    if kind == "in memory":
        return io.BytesIO(data)
    file = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the test
    file.write(data)
    file.seek(0)
    return file  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # A body on disk read 1,000 bytes at a time: its boundaries fall across the chunks.
    monkeypatch.setattr(multipart, "CHUNK", 1000)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("preamble", [b"", b"\r\n", b"a preamble, which readers ignore\r\n"])
def test_each_part_is_read_back_whole(kind: str, preamble: bytes) -> None:
    contents = [bytes([n]) * size for n, size in enumerate((1, 999, 1000, 2500, 37), start=1)]
    body = _kept(kind, preamble + _body(contents))
    parts = parts_read(body, BOUNDARY, limit=10)
    assert [part.number for part in parts] == [1, 2, 3, 4, 5]
    assert all(part.content_type == "application/dicom" for part in parts)
    assert [part_content(body, part) for part in parts] == contents


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_cut_short_is_refused_and_says_which_part(kind: str) -> None:
    data = _body([b"x" * 1500, b"y" * 1500])
    with pytest.raises(MultipartInvalid, match="inside part 2"):
        parts_read(_kept(kind, data[:-200]), BOUNDARY, limit=10)


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_without_its_boundary_is_refused(kind: str) -> None:
    with pytest.raises(MultipartInvalid, match="never occurs"):
        parts_read(_kept(kind, b"z" * 3000), BOUNDARY, limit=10)
