"""Writing files so that nothing half-written is ever left at the destination.

Temporary files and directories sit beside their destination under a recognisable name,
``.<name>.stalwart-tmp.<pid>.<host>.<random>``, so that what a killed process left behind (a
SIGKILL runs no cleanup) is removed by the next write into the same folder, once that process is
known to be gone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "temp_prefix", "remove_stale", "TMP_MARK"]

TMP_MARK = ".stalwart-tmp."
_TMP_RE = re.compile(r"^\..*\.stalwart-tmp\.(?P<pid>\d+)\.(?P<host>[A-Za-z0-9-]+)\.[^.]+$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temp_prefix(name: str) -> str:
    """The prefix of a temporary file or directory for destination ``name``, written by this process."""
    return f".{name}{TMP_MARK}{os.getpid()}.{_host()}."


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (unknown counts as alive)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows: never guess there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to another user, or cannot be asked
        return True
    return True


def remove_stale(parent: Path) -> None:
    """Remove temporary files and directories in ``parent`` left by writes killed before they finished."""
    host = _host()
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = _TMP_RE.match(p.name)
        # another host's process id says nothing about this machine (shared file systems)
        if m is None or m["host"] != host or int(m["pid"]) == os.getpid() or _alive(int(m["pid"])):
            continue
        if p.is_symlink():
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The file gets the permissions an ordinary ``open(path, "w")`` would give it (0666 less the
    umask), not the owner-only mode of the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
