"""One writer per run folder: an exclusive lock file ``RUN_DIR/.vireid.lock``.

The lock is an ``flock`` held on the file for the life of the writer, and the file names the
owner (pid, host, start time, command line) for the error message a second writer gets. The
kernel drops an ``flock`` when its process dies, even by ``kill -9``, so a lock file left behind
by a dead writer is *stale* and the next writer takes it over (logging whose it was); no pid
guessing is involved on a local file system. On a network file system without ``flock``
support the lock file alone is used: a file whose owner is on this host and no longer running
is stale; one from another host is reported with its owner, to be removed by hand.

Locks are re-entrant within a process (the ``vireid train`` command takes the lock before it
reads ``last.pt``; the trainer takes it again in ``fit``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vireid.errors import VireidError

logger = logging.getLogger(__name__)

LOCK_NAME = ".vireid.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunLockedError(VireidError, RuntimeError):
    """Another process is writing into the run folder."""


# resolved lock path -> [fd, depth, created the folder] for the locks this process holds
_HELD: dict[str, list[int]] = {}


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv[:6])}


def _describe(info: dict[str, Any]) -> str:
    if not info:
        return "another process (no owner recorded)"
    return f"pid {info.get('pid')} on host {info.get('host')} (since {info.get('started')}: {info.get('command')!r})"


def read_owner(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The owner recorded in a lock file ({} when unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_flock(fd: int) -> bool | None:
    """True: locked; False: held by another process; None: flock unsupported here."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise


def acquire(run_dir: str | os.PathLike[str]) -> Path:
    """Take the lock of ``run_dir`` (created if missing; removed again on release if left empty);
    :class:`RunLockedError` naming the owner if another process holds it."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        return path
    try:
        return _acquire(run_dir, path, key, created)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise


def _acquire(run_dir: Path, path: Path, key: str, created: bool) -> Path:
    for _ in range(5):  # retry when the file we locked was unlinked by its releasing owner meanwhile
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            got = _try_flock(fd)
            if got is False:
                raise RunLockedError(f"run folder {run_dir} is in use by {_describe(read_owner(path))}; "
                                     f"wait for it to finish or choose another --run-dir")
            if got is None:  # no flock here: fall back to the recorded owner
                info = read_owner(path)
                mine = info.get("host") == socket.gethostname()
                if info and info.get("pid") != os.getpid() and (not mine or _alive(int(info.get("pid", 0)))):
                    raise RunLockedError(f"run folder {run_dir} is in use by {_describe(info)} (lock file {path}; "
                                         "remove it if that process is gone)")
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = read_owner(path)
            if previous and previous.get("pid") != os.getpid():
                logger.warning("run folder %s: replacing the stale lock of %s", run_dir, _describe(previous))
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(_owner()) + "\n").encode(), 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        _HELD[key] = [fd, 1, int(created)]
        return path
    raise RunLockedError(f"run folder {run_dir}: could not take the lock {path} (it keeps changing)")


def release(run_dir: str | os.PathLike[str]) -> None:
    """Drop one level of this process's lock on ``run_dir``; the last one removes the lock file."""
    path = Path(run_dir) / LOCK_NAME
    key = str(path.resolve())
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.close(held[0])
    if held[2]:  # a folder this lock created and nothing was written into: leave no trace
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def holds(run_dir: str | os.PathLike[str]) -> bool:
    """Whether this process holds the lock of ``run_dir``."""
    return str((Path(run_dir) / LOCK_NAME).resolve()) in _HELD


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """``with run_lock(run_dir):`` -- the only writer of ``run_dir`` for the block."""
    path = acquire(run_dir)
    try:
        yield path
    finally:
        release(run_dir)
