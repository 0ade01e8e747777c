"""Reading a ZIP archive of DICOM files without trusting it: no database, no files written.

Each entry comes out as its bytes or as the reason it was refused, so one bad entry costs only itself.
Nothing is ever extracted to disk, yet entries that would climb out of a folder ("../", absolute paths)
and symbolic links are refused by name, since an archive that holds them was not made by a modality.
A decompression bomb is caught twice: by the sizes the archive declares, and by counting the bytes that
actually come out while reading, which a forged header cannot change.
"""

import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.utils.translation import gettext as _

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
READ_PIECE = 2**20
# Below this size an entry is no bomb whatever its ratio (a blank 512-byte header compresses 50:1).
RATIO_FLOOR = 2**20
# Files a disc, an operating system or a packer adds beside the images: left out without a word of blame.
_NOT_IMAGES = {"dicomdir", ".ds_store", "thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Limits:
    entries: int  # entries in the archive
    entry_bytes: int  # unpacked bytes of one entry
    total_bytes: int  # unpacked bytes of all entries together
    ratio: int  # unpacked to packed size of one entry


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes | None = None  # the entry's bytes, when it may be read
    refused: str = ""  # else why not, as a sentence for a person
    skipped: bool = False  # not an image and not a fault (DICOMDIR, .DS_Store, __MACOSX/...)


class ArchiveRefused(ValueError):
    """The archive as a whole cannot be read; the message says why."""


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_SIGNATURES)


def entries_read(source: IO[bytes], limits: Limits) -> Iterator[Entry]:
    """The archive's entries in order, each read within the limits or refused with the reason."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise ArchiveRefused(
            _("The ZIP archive cannot be opened (%(reason)s). Pack it again and send it once more.")
            % {"reason": str(exc)[:200]}
        ) from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.entries:
            raise ArchiveRefused(
                _(
                    "The archive holds %(count)s entries; the limit is %(limit)s. Split it into smaller archives, "
                    "or upload the folder itself."
                )
                % {"count": len(members), "limit": limits.entries}
            )
        unpacked = 0
        for member in members:
            name = member.filename
            if member.is_dir():
                continue
            reason = _entry_refusal(member, limits, unpacked)
            if reason:
                yield Entry(name, refused=reason)
                continue
            if _not_an_image(name):
                yield Entry(name, skipped=True)
                continue
            try:
                data = _read(archive, member, limits, unpacked)
            except _TooMuch as exc:
                yield Entry(name, refused=str(exc))
                continue
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
                message = _("This entry is damaged in the archive (%(reason)s); pack it again.")
                yield Entry(name, refused=message % {"reason": str(exc)[:200]})
                continue
            unpacked += len(data)
            yield Entry(name, data=data)


def _entry_refusal(member: zipfile.ZipInfo, limits: Limits, unpacked: int) -> str:
    """Why an entry is refused from what the archive says about it, before a byte of it is read."""
    name = member.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        return _("Refused: this entry points outside the archive's folder (an absolute path or “..”).")
    if stat.S_ISLNK(member.external_attr >> 16):
        return _("Refused: this entry is a symbolic link, not a file; put the file itself in the archive.")
    if member.flag_bits & 0x1:
        return _("Refused: this entry is password-protected; pack the archive without a password.")
    if member.file_size > limits.entry_bytes:
        return _("Refused: it unpacks to %(size)s MB; the limit for one file is %(limit)s MB.") % {
            "size": member.file_size // 2**20,
            "limit": limits.entry_bytes // 2**20,
        }
    if member.file_size > RATIO_FLOOR and member.file_size > limits.ratio * max(member.compress_size, 1):
        return _bomb(member.file_size, member.compress_size, limits.ratio)
    if unpacked + member.file_size > limits.total_bytes:
        return _total(limits)
    return ""


def _not_an_image(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].lower() in _NOT_IMAGES or parts[-1].startswith("._")


class _TooMuch(Exception):
    pass


def _read(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits, unpacked: int) -> bytes:
    """The entry's bytes, counted as they come out: more than declared, or past a limit, stops the read."""
    pieces: list[bytes] = []
    count = 0
    ceiling = min(member.file_size, limits.entry_bytes, limits.total_bytes - unpacked)
    with archive.open(member) as stream:
        while piece := stream.read(READ_PIECE):
            count += len(piece)
            if count > ceiling:
                if count > member.file_size:
                    raise _TooMuch(
                        _("Refused: it unpacks to more than the %(size)s bytes its header declares.")
                        % {"size": member.file_size}
                    )
                raise _TooMuch(_total(limits))
            if count > RATIO_FLOOR and count > limits.ratio * max(member.compress_size, 1):
                raise _TooMuch(_bomb(count, member.compress_size, limits.ratio))
            pieces.append(piece)
    return b"".join(pieces)


def _bomb(size: int, packed: int, ratio: int) -> str:
    return _(
        "Refused: %(size)s MB packed into %(packed)s KB (more than %(ratio)s to 1) is what a decompression bomb "
        "does, not an image."
    ) % {"size": size // 2**20, "packed": max(packed // 1024, 1), "ratio": ratio}


def _total(limits: Limits) -> str:
    return _("Not unpacked: the archive's files together pass %(limit)s MB. Upload the rest in another archive.") % {
        "limit": limits.total_bytes // 2**20
    }
