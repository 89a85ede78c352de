"""Fetching and unpacking dataset archives, never leaving a half-written file in place.

A download streams into a temporary file in the destination folder, is checked against the
published md5 and only then renamed to its final name (a rename within one folder is atomic).
An archive is extracted into a temporary folder next to its destination and the dataset folder is
renamed into place once extraction succeeded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zlib

# Module attribute (not a direct urllib call) so tests can serve an archive without a network.
_urlopen = urllib.request.urlopen
_CHUNK = 1 << 20


class DownloadError(OSError):
    """A download failed (no network, HTTP error) or its md5 did not match."""


@dataclasses.dataclass(frozen=True)
class Archive:
    url: str
    filename: str  # name of the archive in the data folder
    md5: str
    folder: str  # top-level folder inside the archive


def md5sum(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _progress(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a progress bar is not worth failing for
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=None, leave=False)


def fetch(archive: Archive, folder: str) -> str:
    """Download archive.url to folder/archive.filename, verified against archive.md5."""
    os.makedirs(folder, exist_ok=True)
    dest = os.path.join(folder, archive.filename)
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.filename}.", suffix=".part", dir=folder)
    how = (f"Download {archive.url} on a machine with a network (md5 {archive.md5}) and put it in "
           f"{folder}; it is verified and extracted on the next call.")
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            try:
                with _urlopen(archive.url, timeout=60) as resp:
                    length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
                    bar = _progress(int(length) if length and length.isdigit() else None, archive.filename)
                    try:
                        while chunk := resp.read(_CHUNK):
                            h.update(chunk)
                            out.write(chunk)
                            if bar is not None:
                                bar.update(len(chunk))
                    finally:
                        if bar is not None:
                            bar.close()
            except (OSError, http.client.HTTPException) as e:  # URLError and HTTPError are OSErrors
                reason = getattr(e, "reason", None) or e
                raise DownloadError(f"could not download {archive.url}: {reason}. {how}") from e
        got = h.hexdigest()
        if got != archive.md5:
            raise DownloadError(f"{archive.url}: md5 mismatch: got {got}, expected {archive.md5}; the "
                                f"download is corrupted or incomplete and was discarded. {how}")
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest


def _check_member(path: str, m: tarfile.TarInfo) -> None:
    parts = m.name.replace("\\", "/").split("/")
    if m.name.startswith("/") or ".." in parts:
        raise ValueError(f"{path}: refusing to extract {m.name!r} (path outside the archive folder)")
    if not (m.isfile() or m.isdir()):
        raise ValueError(f"{path}: refusing to extract {m.name!r} (not a regular file or folder)")


def extract(archive: Archive, path: str, folder: str) -> str:
    """Extract the tar.gz at `path` and move its archive.folder to folder/archive.folder."""
    dest = os.path.join(folder, archive.folder)
    if os.path.exists(dest):
        raise FileExistsError(f"{dest} exists but does not hold a complete dataset; remove it and retry")
    tmpdir = tempfile.mkdtemp(prefix=".extract-", dir=folder)
    try:
        try:
            with tarfile.open(path, "r:gz") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(path, m)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmpdir, members, filter="data")
                else:  # Python < 3.11.4: the member check above is the filter
                    tar.extractall(tmpdir, members)
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupted or truncated archive ({e})") from e
        src = os.path.join(tmpdir, archive.folder)
        if not os.path.isdir(src):
            raise ValueError(f"{path}: the archive has no {archive.folder}/ folder")
        os.rename(src, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return dest


def fetch_and_extract(archive: Archive, folder: str, download: bool) -> str:
    """Make folder/archive.folder exist: extract an archive already in `folder` (after checking its
    md5), or download it first when `download` is true. Returns the extracted folder."""
    path = os.path.join(folder, archive.filename)
    dest = os.path.join(folder, archive.folder)
    if os.path.exists(dest):  # checked before a download that could not be used anyway
        raise FileExistsError(f"{dest} exists but does not hold a complete dataset; remove it and retry")
    if os.path.isfile(path):
        got = md5sum(path)
        if got != archive.md5:
            raise ValueError(f"{path}: md5 mismatch: got {got}, expected {archive.md5}; the archive is "
                             f"corrupted or incomplete: delete it and download it again")
    elif download:
        path = fetch(archive, folder)
    else:
        raise FileNotFoundError(path)
    return extract(archive, path, folder)
