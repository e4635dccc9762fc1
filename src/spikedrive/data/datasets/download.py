"""Fetching and unpacking dataset archives on machines that can reach the hosts.

Nothing here runs unless a dataset is built with ``download=True``; an unreachable host
raises ConnectionError telling the user where to put a copy fetched by other means.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["md5sum", "download_url", "extract_archive"]


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_url(url: str, dest: Path, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to the file ``dest`` (skipped if it exists with the right MD5).

    Raises:
        ConnectionError: the host cannot be reached (message names the URL and ``dest``).
        ValueError: the download's MD5 differs from ``md5``.
    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, length=1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        raise ConnectionError(
            f"could not download {url} ({err}). If this machine is offline, fetch the file "
            f"elsewhere and place it at {dest}"
        ) from err
    if md5 is not None and (got := md5sum(tmp)) != md5:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"download of {url}: MD5 {got}, expected {md5}")
    tmp.replace(dest)
    return dest


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a ``.zip``, ``.tar(.gz)`` or single-file ``.gz`` into ``dest``, refusing paths
    that would escape it."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()

    def inside(name: str) -> bool:
        return (root / name).resolve().is_relative_to(root)

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            bad = [n for n in z.namelist() if not inside(n)]
            if bad:
                raise ValueError(f"{archive}: member {bad[0]!r} would extract outside {dest}")
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 checks members itself
                t.extractall(dest, filter="data")
            else:
                bad = [m.name for m in t.getmembers() if not inside(m.name) or m.issym() or m.islnk()]
                if bad:
                    raise ValueError(f"{archive}: member {bad[0]!r} is a link or escapes {dest}")
                t.extractall(dest)
    elif archive.suffix == ".gz":
        with gzip.open(archive, "rb") as src, open(dest / archive.stem, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    else:
        raise ValueError(f"extract_archive: {archive} is not a zip, tar or gz archive")
