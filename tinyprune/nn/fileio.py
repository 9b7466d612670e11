"""Atomic file writes: a crash never leaves a half-written file under the real name."""

from __future__ import annotations

import contextlib
import os
import tempfile


def _file_mode() -> int:
    """Permissions a normally created file would get (``0o666`` minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file beside ``path`` for binary writing; on success move it over ``path``.

    The temporary file lives in the target's folder (so :func:`os.replace` is a rename on one file
    system), is flushed to disk (``fsync``), given normal permissions and renamed; the folder is
    then synced so the rename itself survives a crash. If the body raises, the temporary file is
    removed and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_write("model.npz") as f:  # doctest: +SKIP
    ...     np.savez(f, w=w)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename durable (POSIX)
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
