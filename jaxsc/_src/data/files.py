"""Finding, verifying and downloading dataset files.

A data directory is chosen in this order: the explicit ``data_dir`` argument, the environment variable
``JAXSC_DATA_DIR``, then the user cache directory (``$XDG_CACHE_HOME/jaxsc`` or ``~/.cache/jaxsc``).
Inside it a file is looked up as ``<data_dir>/<folder>/<name>`` (the layout of the benchmark folder) and,
failing that, as ``<data_dir>/<name>``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

DATA_DIR_ENV = "JAXSC_DATA_DIR"


class DataFileError(FileNotFoundError):
    """A dataset file is missing, corrupt, or could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    Attributes:
      folder: sub-folder of the data directory the file usually lives in (e.g. ``"coil20"``).
      name: file name (e.g. ``"COIL20.mat"``).
      description: what the file should be, shown in error messages.
      sha256: expected checksum, or ``None`` where no reference checksum is known (then the file is only
        checked by its reader, for keys and shapes).
      url: where ``download=True`` fetches it from, or ``None``.
    """

    folder: str
    name: str
    description: str
    sha256: str | None = None
    url: str | None = None


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/jaxsc``, else ``~/.cache/jaxsc``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxsc"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: ``data_dir``, else ``$JAXSC_DATA_DIR``, else :func:`user_cache_dir`."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def candidate_paths(spec: DataFile, data_dir: Path) -> tuple[Path, Path]:
    return data_dir / spec.folder / spec.name, data_dir / spec.name


def find_file(spec: DataFile, data_dir: Path) -> Path | None:
    """The first existing candidate path of ``spec`` in ``data_dir``, or ``None``."""
    for path in candidate_paths(spec, data_dir):
        if path.is_file():
            return path
    return None


def verify(spec: DataFile, path: Path) -> None:
    """Raise :class:`DataFileError` when ``path`` does not have the checksum of ``spec``."""
    if spec.sha256 is None:
        return
    actual = sha256sum(path)
    if actual != spec.sha256:
        raise DataFileError(
            f"{path} is corrupt or a different file: sha256 {actual}, expected {spec.sha256} "
            f"({spec.description}). Delete it and copy or download it again."
        )


def download(spec: DataFile, data_dir: Path, url: str | None = None) -> Path:
    """Download ``spec`` into ``<data_dir>/<folder>/<name>``, verifying its checksum before it is kept."""
    url = url or spec.url
    if url is None:
        raise DataFileError(f"{spec.name} has no download address; copy it into {data_dir / spec.folder}.")
    target = data_dir / spec.folder / spec.name
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"jaxsc: downloading {url} -> {target}", file=sys.stderr)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        except OSError as err:
            os.unlink(tmp.name)
            raise DataFileError(f"could not download {spec.name} from {url}: {err}") from err
    try:
        verify(spec, Path(tmp.name))
    except DataFileError:
        os.unlink(tmp.name)
        raise
    os.replace(tmp.name, target)
    return target


def locate(spec: DataFile, data_dir: str | os.PathLike | None = None, *, download_missing: bool = False,
           base_url: str | None = None) -> Path:
    """Path of a verified copy of ``spec``.

    Args:
      spec: the file.
      data_dir: explicit data directory (see :func:`resolve_data_dir`).
      download_missing: fetch the file when it is absent.
      base_url: download from ``base_url + "/" + folder + "/" + name`` instead of ``spec.url``.

    Raises:
      DataFileError: naming the file, the directory searched and what the file should be.
    """
    root = resolve_data_dir(data_dir)
    path = find_file(spec, root)
    if path is None:
        if download_missing:
            url = f"{base_url.rstrip('/')}/{spec.folder}/{spec.name}" if base_url else None
            return download(spec, root, url)
        tried = " or ".join(str(p) for p in candidate_paths(spec, root))
        source = ("the data_dir argument" if data_dir is not None
                  else DATA_DIR_ENV if os.environ.get(DATA_DIR_ENV) else "the user cache dir")
        raise DataFileError(
            f"missing data file {spec.name!r}: looked for {tried} (data directory {root}, from {source}). "
            f"Expected: {spec.description}. Set {DATA_DIR_ENV} or pass data_dir=..., or use download=True."
        )
    verify(spec, path)
    return path
