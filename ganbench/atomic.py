"""Atomic file writes, and the removal of temp files left by writers that were killed.

Every file ganbench writes (checkpoints, the feature cache, logs, leaderboards, ``--json``,
the third-party registry) is written to a temp file beside it, fsynced and moved over
the target with ``os.replace``: readers see the old file or the new one, never half of
one. A temp file is named ``.<name>.tmp<pid>-<random>@<host>``, so :func:`remove_stale_temps`
can tell a killed writer's leftovers (a dead process on this host, or an hour old) from
a live writer's.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STALE_TEMP_S = 3600  # a write takes seconds; an hour-old temp file is abandoned
FILE_MODE = 0o644  # an ordinary file, not mkstemp's private 0600
# <pid>-<random>: mkstemp's; without -<random> or @<host>: names written by older ganbench versions
_TEMP_NAME = re.compile(r"\.(.+)\.tmp(\d+)(?:-[a-z0-9_]+)?(?:@(.+))?")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path`` for a writer that takes a file name (such as
    ``safetensors.torch.save_file``); when the block ends without an error, move it to
    ``path`` atomically, else delete it.

    Raises:
        FileExistsError: ``path`` exists and not ``overwrite`` (nothing is clobbered, not
            even a file created while the block ran).
        OSError: the temp file cannot be created or moved.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp{os.getpid()}-",
                                suffix=f"@{socket.gethostname()}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, FILE_MODE)
        _move(tmp, path, overwrite)
    finally:
        with contextlib.suppress(OSError):  # moved into place already (or cannot go: keep the first error)
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)  # atomic: the old file stays valid until here
    else:
        try:
            os.link(tmp, path)  # atomic create-if-absent: never clobbers a file made meanwhile
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            os.replace(tmp, path)
    with contextlib.suppress(OSError):  # folders cannot be fsynced everywhere
        _fsync(path.parent)


def remove_stale_temps(folder: str | os.PathLike) -> None:
    """Delete the temp files in ``folder`` whose writer was killed: a dead process on this
    host, or written over :data:`STALE_TEMP_S` ago."""
    with contextlib.suppress(OSError):  # no folder, or not ours to clean
        for path in Path(folder).glob(".*.tmp*"):
            with contextlib.suppress(OSError):  # removed by someone else first
                if is_stale_temp(path):
                    path.unlink()


def is_stale_temp(path: Path) -> bool:
    """Whether ``path`` is a temp file of :func:`atomic_path` whose writer is gone."""
    match = _TEMP_NAME.fullmatch(path.name)
    if not match:
        return False
    if time.time() - path.stat().st_mtime > STALE_TEMP_S:
        return True
    pid, host = int(match[2]), match[3]
    if host not in (None, socket.gethostname()) or pid >= 2 ** 31:  # another machine's, or not a pid
        return False
    return not process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
