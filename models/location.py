"""A location that is a local path or an fsspec URL: the lake (LAKE_DIR) and reports (REPORTS_DIR).

Every location is a universal_pathlib `UPath`. A local path is a `PosixUPath`, which *is* a
`pathlib.Path`, so local folders behave exactly as plain paths did; `s3://bucket/lake`,
`gs://…`, `file:///…` or `memory://…` go through the fsspec filesystem of their protocol, whose
package (s3fs for `s3://`) must be installed where the code runs. Credentials and endpoints come
from the backend's own environment (for s3fs: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_ENDPOINT_URL`, …) or from fsspec's `FSSPEC_<PROTOCOL>_<OPTION>` variables; none is a setting
of ours. Settings declare such a field as `Location`: an unknown protocol or a missing backend
fails when the settings load, with the variable named, instead of at the first write.

It lives in `models` beside shared_settings because the pipeline and monitoring both use it;
serving does not import it (it never reads the lake or reports).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import fsspec  # type: ignore[import-untyped]
import pandas as pd
from pydantic import Field, PlainSerializer, PlainValidator
from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")


def location(value: str | os.PathLike[str]) -> UPath:
    """A UPath for a local path or fsspec URL; ValueError for a protocol that cannot be used.

    Raised here, not at the first read, so that a typo or a missing package is one line at
    start (settings name the variable) instead of a failure halfway through a run.
    """
    path: UPath
    if isinstance(value, UPath):
        path = value
    else:
        try:
            path = UPath(os.fspath(value))
        except ValueError as problem:  # universal_pathlib: "Unsupported filesystem: 'x'"
            raise ValueError(f"{value!s}: unknown protocol ({problem})") from None
    if path.protocol not in LOCAL_PROTOCOLS:
        try:
            fsspec.get_filesystem_class(path.protocol)
        except ImportError as problem:  # fsspec: "Install s3fs to access S3"
            raise ValueError(
                f"{path.protocol}:// needs its fsspec backend, which is not installed ({problem})"
            ) from None
        except ValueError as problem:  # fsspec: "Protocol not known: x"
            raise ValueError(
                f"{path.protocol}:// is not a protocol fsspec knows ({problem})"
            ) from None
    return path


# A settings field holding a location: validated (also its default) into a UPath, shown as text.
Location = Annotated[
    UPath,
    PlainValidator(location),
    PlainSerializer(str, return_type=str),
    Field(validate_default=True),
]


def is_local(path: UPath) -> bool:
    """Whether the location is on this machine's file system (a path or a `file://` URL)."""
    return path.protocol in LOCAL_PROTOCOLS


def shown(path: UPath) -> str:
    """How a location is shown to people and in links: absolute when local, else its URL."""
    return str(path.resolve()) if isinstance(path, Path) else str(path)


def public_link(path: UPath, root: UPath, base_url: str | None) -> str:
    """The link people follow to `path`, a file under `root`: `base_url` + its path below `root`
    when the folder is published at that URL (a web server, a bucket's website, a CDN), else
    `shown(path)`. An `s3://` URL opens nothing in a browser or a chat client, hence the base.
    """
    if not base_url:
        return shown(path)
    below = str(path)[len(str(root)) :].lstrip("/") if str(path).startswith(str(root)) else ""
    if not below:
        raise ValueError(f"{path} is not below {root}")
    return f"{base_url.rstrip('/')}/{below}"


def refreshed(folder: UPath) -> UPath:
    """`folder`, its filesystem's listing cache dropped first: call before listing it.

    Object-store filesystems cache listings (names and sizes) for the life of the process, and
    fsspec reuses the filesystem instance, so a long-lived process (the daemon's sensors, a
    Celery worker) would otherwise miss, or misread, files another process wrote since it last
    looked. The whole cache, not the folder's entry: the entries of its sub-folders are stale too.
    """
    if not is_local(folder):
        folder.fs.invalidate_cache()
    return folder


def remove_tree(folder: UPath) -> None:
    """Delete a folder and everything under it; nothing to do when it is absent."""
    if isinstance(folder, Path):
        shutil.rmtree(folder, ignore_errors=True)
    elif refreshed(folder).exists():
        folder.fs.rm(folder.path, recursive=True)


def read_parquet(path: UPath, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file at a location, or its `columns` (pyarrow's own access when local)."""
    if isinstance(path, Path):
        return pd.read_parquet(path, columns=columns)
    with path.open("rb") as handle:
        return pd.read_parquet(handle, columns=columns)


def write_parquet(frame: pd.DataFrame, path: UPath) -> None:
    """Write `frame` as Parquet at a location, without its index."""
    if isinstance(path, Path):
        frame.to_parquet(path, index=False)
        return
    with path.open("wb") as handle:
        frame.to_parquet(handle, index=False)


@contextmanager
def local_folder(folder: UPath) -> Iterator[Path]:
    """The files directly in `folder` as a local folder: itself when local, else a copy.

    For tools that only take a local directory (MLflow's `log_artifacts`).
    """
    if isinstance(folder, Path):
        yield folder
        return
    if is_local(folder):
        yield Path(folder.path)
        return
    with tempfile.TemporaryDirectory(prefix="supportloop-") as copy:
        for item in refreshed(folder).iterdir():
            if item.is_file():
                (Path(copy) / item.name).write_bytes(item.read_bytes())
        yield Path(copy)
