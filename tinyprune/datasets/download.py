"""Checksummed, cached downloads with mirror fallback, and file verification.

A data file is described by a :class:`FileRecord`. A file on disk is accepted ("verified") if

* its raw bytes match the upstream gzip MD5 or SHA-256 (the file exactly as published), **or**
* the bytes it decodes to (after gunzip, or the file itself if it is stored plain) match the
  recorded decoded SHA-256.

The second rule accepts re-compressed copies such as Debian's ``dataset-fashion-mnist`` package,
whose gzip bytes differ from upstream's while the content is identical.

Downloads stream into a temporary file in the destination folder; it is renamed into place only
after the checksum matches, so an interrupted or corrupted download never leaves a file in the
cache. Every failure (network error, HTTP error, short body, checksum mismatch) moves on to the
next mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ChecksumMismatchError", "DownloadError", "FileRecord", "checksum_status", "digest_file",
    "download_file", "status_from_digests",
]

_CHUNK = 1 << 16
#: Checksum status values (see :func:`checksum_status`).
VERIFIED, MISMATCH, UNVERIFIABLE, MISSING = "verified", "mismatch", "unverifiable", "missing"


class ChecksumMismatchError(ValueError):
    """A file's checksum does not match the recorded value."""


class DownloadError(OSError):
    """No mirror delivered a file with a matching checksum; ``attempts`` lists why."""

    def __init__(self, message: str, attempts: Sequence[str] = ()):
        super().__init__(message)
        self.attempts = list(attempts)


@dataclass(frozen=True)
class FileRecord:
    """What a data file should contain.

    Attributes
    ----------
    filename : str
        Canonical (upstream, gzipped) file name, e.g. ``"train-images-idx3-ubyte.gz"``.
    decoded_size : int or None
        Size in bytes of the decompressed file (bounds downloads and decompression).
    gzip_md5, gzip_sha256 : str or None
        Digests of the upstream gzip file as published.
    decoded_sha256 : str or None
        SHA-256 of the decompressed bytes (valid for any re-compression or a plain copy).
    """

    filename: str
    decoded_size: int | None = None
    gzip_md5: str | None = None
    gzip_sha256: str | None = None
    decoded_sha256: str | None = None

    @property
    def plain_name(self) -> str:
        """The file name without the ``.gz`` suffix (name of an uncompressed copy)."""
        return self.filename[:-3] if self.filename.endswith(".gz") else self.filename


def digest_file(path, *, decode: bool = True, max_decoded: int | None = None) -> dict:
    """Hash a file in one streaming pass (plus one for the decoded bytes of a gzip file).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    decode : bool
        Also compute the SHA-256 of the decompressed bytes (for a gzip file).
    max_decoded : int, optional
        Stop decompressing after this many bytes (then ``decoded_sha256`` is None).

    Returns
    -------
    dict
        ``{"gzip": bool, "md5": str, "sha256": str, "decoded_sha256": str or None}``;
        ``decoded_sha256`` is None if the gzip stream is corrupt or too long.
    """
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(2)
        md5.update(head)
        sha.update(head)
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
    is_gz = head == b"\x1f\x8b"
    decoded = None if is_gz else sha.hexdigest()
    if is_gz and decode:
        decoded = _decoded_sha256(path, max_decoded)
    return {"gzip": is_gz, "md5": md5.hexdigest(), "sha256": sha.hexdigest(),
            "decoded_sha256": decoded}


def _decoded_sha256(path, max_decoded: int | None) -> str | None:
    h, n = hashlib.sha256(), 0
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                n += len(chunk)
                if max_decoded is not None and n > max_decoded:
                    return None
                h.update(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error):
        return None
    return h.hexdigest()


def status_from_digests(record: FileRecord, *, is_gzip: bool, md5: str | None = None,
                        sha256: str | None = None, decoded_sha256: str | None = None) -> str:
    """Classify digests against ``record``: "verified", "mismatch" or "unverifiable".

    A gzip file can be checked against the gzip digests and the decoded SHA-256; a plain file
    only against the decoded SHA-256. "unverifiable" means no recorded digest applies (e.g. a
    plain MNIST copy, for which only the upstream gzip MD5 is recorded).
    """
    if is_gzip:
        if record.gzip_md5 and md5 == record.gzip_md5:
            return VERIFIED
        if record.gzip_sha256 and sha256 == record.gzip_sha256:
            return VERIFIED
    if record.decoded_sha256 and decoded_sha256 == record.decoded_sha256:
        return VERIFIED
    applicable = record.decoded_sha256 or (is_gzip and (record.gzip_md5 or record.gzip_sha256))
    return MISMATCH if applicable else UNVERIFIABLE


def checksum_status(path, record: FileRecord) -> str:
    """Return "verified", "mismatch", "unverifiable" or "missing" for the file at ``path``."""
    if not os.path.isfile(path):
        return MISSING
    d = digest_file(path, decode=False)
    status = status_from_digests(record, is_gzip=d["gzip"], md5=d["md5"], sha256=d["sha256"],
                                 decoded_sha256=d["decoded_sha256"])
    if status == VERIFIED or not (d["gzip"] and record.decoded_sha256):
        return status
    limit = record.decoded_size
    decoded = _decoded_sha256(path, limit)
    return status_from_digests(record, is_gzip=True, decoded_sha256=decoded)


def _join(mirror: str, filename: str) -> str:
    return mirror.rstrip("/") + "/" + filename


def _fetch(url: str, dest: str, *, timeout: float, max_bytes: int | None) -> None:
    """Stream ``url`` into the open path ``dest``; raise on any HTTP or length problem."""
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"mirror: expected an http:// or https:// URL, got {url!r}")
    req = urllib.request.Request(url, headers={"User-Agent": "tinyprune"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
        length = resp.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and max_bytes is not None and expected > max_bytes:
            raise ValueError(f"server announces {expected} bytes, expected at most {max_bytes}")
        received = 0
        while True:
            chunk = resp.read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if max_bytes is not None and received > max_bytes:
                raise ValueError(f"body exceeds {max_bytes} bytes")
            out.write(chunk)
    if expected is not None and received != expected:
        raise OSError(f"connection closed after {received} of {expected} announced bytes")


def download_file(record: FileRecord, dest_dir, mirrors: Sequence[str], *,
                  timeout: float = 30.0) -> str:
    """Download ``record.filename`` into ``dest_dir``, trying each mirror in turn.

    Parameters
    ----------
    record : FileRecord
        The file to fetch and the digests it must match.
    dest_dir : str or os.PathLike
        Destination folder (created if needed). The file lands as
        ``dest_dir/record.filename`` only once verified.
    mirrors : sequence of str
        Base URLs (http or https); the file name is appended.
    timeout : float
        Socket timeout in seconds for connecting and for each read.

    Returns
    -------
    str
        Path of the verified file.

    Raises
    ------
    DownloadError
        If no mirror delivered a verified file; ``err.attempts`` says what each one did.
    """
    if isinstance(mirrors, str) or not isinstance(mirrors, Sequence):
        raise TypeError(f"mirrors: expected a sequence of URL strings, got {mirrors!r}")
    if not mirrors:
        raise ValueError("mirrors: expected at least one mirror URL, got none")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    dest_dir = os.fspath(dest_dir)
    os.makedirs(dest_dir, exist_ok=True)
    target = os.path.join(dest_dir, record.filename)
    max_bytes = None if record.decoded_size is None else record.decoded_size + (1 << 20)
    attempts = []
    for mirror in mirrors:
        url = _join(str(mirror), record.filename)
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{record.filename}.", suffix=".part")
        os.close(fd)
        try:
            _fetch(url, tmp, timeout=float(timeout), max_bytes=max_bytes)
            status = checksum_status(tmp, record)
            if status != VERIFIED:
                raise ChecksumMismatchError(f"checksum {status}")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            attempts.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(
        f"could not download {record.filename} from any mirror:\n  " + "\n  ".join(attempts),
        attempts,
    )
