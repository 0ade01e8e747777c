"""multipart/related bodies (RFC 2046, RFC 2387), read for STOW-RS and written for WADO-RS.

A request body is scanned once for where its parts begin and end, so a request with too many parts or a
broken ending is refused before anything is stored; each part is then read on its own. A body held in
memory is searched where it lies; one spooled to disk is read a chunk at a time, at most one chunk held.
Responses are written as a stream of parts.
"""

import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.utils.http import parse_header_parameters
from django.utils.translation import gettext as _

CHUNK = 1024 * 1024
# A part's headers (Content-Type and perhaps Content-Length, Content-ID) fit easily; a body whose headers
# run on past this is not a multipart body.
MAX_HEADER_BYTES = 16 * 1024


class MultipartInvalid(ValueError):
    """The body is not a multipart body that can be read; the message says why, for a person."""


class TooManyParts(MultipartInvalid):
    pass


@dataclass(frozen=True)
class Part:
    number: int  # from 1, as a person counts the parts of a request
    start: int  # offsets of the content in the body
    end: int
    headers: dict[str, str]  # names in lower case

    @property
    def content_type(self) -> str:
        """The part's media type without parameters, in lower case ("" when the part names none)."""
        return parse_header_parameters(self.headers.get("content-type", ""))[0]


def parts_read(body: BinaryIO, boundary: str, *, limit: int) -> list[Part]:
    """Where the parts of a multipart body lie. Raises TooManyParts past `limit` parts, and
    MultipartInvalid when there is no first boundary, a part's headers do not end, or the closing
    boundary is missing (a body cut short)."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    reader = _Reader(body)
    # A body may open with the boundary itself, without the line break that precedes every later one.
    opening = delimiter[2:]
    position = -2 if reader.peek(0, len(opening)) == opening else reader.find(delimiter, 0)
    if position is None:
        raise MultipartInvalid(
            _("The body holds no part: its boundary “%(boundary)s” never occurs.") % {"boundary": boundary}
        )
    parts: list[Part] = []
    while True:
        after = position + len(delimiter)
        if reader.peek(after, 2) == b"--":
            return parts
        number = len(parts) + 1
        line_end = reader.find(b"\r\n", after, within=MAX_HEADER_BYTES)
        header_end = None if line_end is None else reader.find(b"\r\n\r\n", line_end, within=MAX_HEADER_BYTES)
        if line_end is None or header_end is None:
            raise MultipartInvalid(
                _("The headers of part %(number)s do not end with an empty line.") % {"number": number}
            )
        headers = _headers(reader.peek(line_end + 2, header_end - line_end - 2))
        start = header_end + 4
        end = reader.find(delimiter, start)
        if end is None:
            raise MultipartInvalid(
                _(
                    "The body ends inside part %(number)s, without the closing boundary: it was probably cut "
                    "off on the way. Nothing was stored; send it again."
                )
                % {"number": number}
            )
        parts.append(Part(number, start, end, headers))
        if len(parts) > limit:
            raise TooManyParts(
                _("The request holds more than %(limit)s parts; send at most %(limit)s images per request.")
                % {"limit": limit}
            )
        position = end


def part_content(body: BinaryIO, part: Part) -> bytes:
    body.seek(part.start)
    return body.read(part.end - part.start)


def _headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


class _Reader:
    """A window on a file, addressed by offsets in the file, that reads on as a search needs and forgets
    what lies behind the search. A body held in memory (io.BytesIO) is searched where it lies, uncopied."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        # bytes: all of the body, in memory already; a bytearray: the window on a file, read as needed.
        self.buffer: bytes | bytearray = file.getvalue() if isinstance(file, io.BytesIO) else bytearray()
        self.base = 0  # the file offset of buffer[0]
        self.done = isinstance(self.buffer, bytes)

    def _more(self) -> bool:
        chunk = b"" if self.done else self.file.read(CHUNK)
        if not chunk:
            self.done = True
            return False
        self.buffer += chunk
        return True

    def _forget_before(self, offset: int) -> None:
        if offset > self.base and isinstance(self.buffer, bytearray):
            del self.buffer[: offset - self.base]
            self.base = offset

    def peek(self, offset: int, size: int) -> bytes:
        while self.base + len(self.buffer) < offset + size and not self.done:
            self._more()
        return bytes(self.buffer[offset - self.base : offset - self.base + max(size, 0)])

    def find(self, needle: bytes, start: int, within: int | None = None) -> int | None:
        """The offset of `needle` at or after `start` (and starting within `within` bytes), or None."""
        self._forget_before(start)
        searched = start
        while True:
            found = self.buffer.find(needle, searched - self.base)
            if found >= 0:
                offset = self.base + found
                return offset if within is None or offset - start <= within else None
            if within is not None and self.base + len(self.buffer) - start > within + len(needle):
                return None
            # The next search starts where a match could still begin.
            searched = max(start, self.base + len(self.buffer) - len(needle) + 1)
            if within is None:
                self._forget_before(searched)
            if not self._more():
                return None


def boundary_new() -> str:
    return uuid.uuid4().hex


def related_type(part_type: str, boundary: str) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def multipart_write(parts: Iterable[tuple[str, Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """A multipart body from (content type, content chunks) pairs, produced as it is sent."""
    for content_type, chunks in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1")
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")
