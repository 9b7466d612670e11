"""Run a student's code in a separate worker process, one call at a time, with a time limit.

:class:`Sandbox` starts one worker per graded submission, executes the submission's source there
(never in the grader's process), then sends it the cases one by one. Each call returns an
:class:`Outcome`: the value, the arguments as they are *after* the call (to detect a modified
input), the student's printed output, or why there is no value (exception, timeout, crash). When a
call exceeds its time limit the worker is killed and a fresh one (with the submission loaded
again) serves the next case, so an infinite loop costs one case, not the grading run.

The workers come from a ``forkserver`` (``spawn`` where that is missing) with NumPy preloaded, so a
new worker starts in milliseconds and shares no state with the grader (``fork`` when the main
module cannot be re-imported, e.g. a script read from stdin). Imports of
``forbidden_modules`` (by default tinyprune itself, whose references are the answers) fail inside
the worker.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import linecache
import multiprocessing as mp
import os
import sys
import traceback
from dataclasses import dataclass

__all__ = ["Outcome", "Sandbox"]

_OUTPUT_LIMIT = 2000


@dataclass
class Outcome:
    """What one call of the student's function gave.

    ``kind`` is "ok" (``value`` and ``args_after`` are set), "error" (the function raised, or its
    result could not be sent back), "timeout", "crash" (the worker died) or "load" (the submission
    itself could not be loaded); ``message`` explains the last four.
    """

    kind: str
    value: object = None
    args_after: tuple | None = None
    message: str = ""
    output: str = ""


# ----------------------------------------------------------------------------- worker side
class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, prefixes):
        self.prefixes = tuple(prefixes)

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == p or fullname.startswith(p + ".") for p in self.prefixes):
            raise ImportError(f"importing {fullname!r} is not allowed in this assignment")
        return None


def _short_traceback(exc: BaseException, filename: str) -> str:
    """The exception with only the frames inside the student's code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = traceback.format_list(frames[-3:])
    return "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _captured(buf: io.StringIO) -> str:
    text = buf.getvalue()
    return text if len(text) <= _OUTPUT_LIMIT else text[:_OUTPUT_LIMIT] + "\n[output truncated]"


def _worker_main(conn, source: str, filename: str, function: str, forbidden: tuple) -> None:
    """Worker loop: load the submission, then answer ("call", args) messages until "stop"."""
    for name in [m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in forbidden)]:
        if name != __name__:
            del sys.modules[name]
    if forbidden:
        sys.meta_path.insert(0, _Blocker(forbidden))
    namespace = {"__name__": "submission", "__file__": filename}
    # tracebacks quote the graded source (a notebook's code cells), not the file on disk
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the point of a grader
        fn = namespace.get(function)
        if not callable(fn):
            raise NameError(f"the submission defines no function named {function!r}")
    except BaseException as exc:  # noqa: BLE001 - student code may raise anything, even SystemExit
        conn.send(("load_error", _short_traceback(exc, filename), _captured(buf)))
        return
    conn.send(("loaded", None, _captured(buf)))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        args = msg[1]
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                value = fn(*args)
        except BaseException as exc:  # noqa: BLE001
            conn.send(("error", _short_traceback(exc, filename), _captured(buf)))
            continue
        try:
            conn.send(("ok", (value, args), _captured(buf)))
        except Exception as exc:  # noqa: BLE001 - an unpicklable result
            conn.send(("error", f"the result could not be sent back to the grader "
                                f"({type(exc).__name__}: {exc}); return numpy arrays",
                       _captured(buf)))


# ----------------------------------------------------------------------------- grader side
def _main_is_reloadable() -> bool:
    """Whether a spawned process can re-import ``__main__`` (not so for ``python -`` (stdin))."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return True
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)


def _context():
    methods = mp.get_all_start_methods()
    if not _main_is_reloadable() and "fork" in methods:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", __name__])
        return ctx
    return mp.get_context("spawn")


class Sandbox:
    """One submission loaded in a worker process; :meth:`call` runs one case.

    Parameters
    ----------
    source : str
        The submission's Python source (a .py file, or a notebook's code cells joined).
    function : str
        Name of the function to call.
    filename : str
        Shown in tracebacks.
    timeout : float
        Seconds allowed per call.
    load_timeout : float
        Seconds allowed to execute the source (imports included).
    forbidden_modules : tuple of str
        Module prefixes whose import fails in the worker.
    """

    def __init__(self, source, function, *, filename="submission.py", timeout=2.0,
                 load_timeout=20.0, forbidden_modules=("tinyprune",)):
        self.source, self.function, self.filename = source, function, filename
        self.timeout, self.load_timeout = float(timeout), float(load_timeout)
        self.forbidden = tuple(forbidden_modules)
        self.load_output = ""
        self.load_error: Outcome | None = None
        self.starts = 0
        self._proc = self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self) -> Outcome | None:
        ctx = _context()
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker_main, daemon=True,
                                 args=(child, self.source, self.filename, self.function,
                                       self.forbidden))
        self._proc.start()
        child.close()
        self._conn = parent
        reply = self._receive(self.load_timeout, "loading the submission")
        if reply.kind == "ok":
            self.load_output = reply.output
            return None
        self._kill()
        return Outcome("load", message=reply.message, output=reply.output)

    def _receive(self, timeout, what) -> Outcome:
        if not self._conn.poll(timeout):
            self._kill()
            return Outcome("timeout", message=f"{what} took longer than {timeout:g} s "
                                              f"(an infinite loop?)")
        try:
            kind, payload, output = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(1.0)
            code = self._proc.exitcode
            self._kill()
            return Outcome("crash", message=f"the process running your code died while "
                                            f"{what} (exit code {code})")
        if kind in ("ok", "loaded"):
            value, args = payload if kind == "ok" else (None, None)
            return Outcome("ok", value=value, args_after=args, output=output)
        return Outcome("error", message=payload, output=output)

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5.0)
            self._conn.close()
        self._proc = self._conn = None

    def call(self, args: tuple) -> Outcome:
        """Run ``function(*args)`` in the worker (starting or restarting it as needed)."""
        if self.load_error is not None:
            return self.load_error
        if self._proc is None:
            self.starts += 1
            failure = self._start()
            if failure is not None:  # the source loaded once loads again, so this is final
                self.load_error = failure
                return failure
        self._conn.send(("call", args))
        return self._receive(self.timeout, f"running {self.function}")

    def close(self) -> None:
        """Stop the worker (politely, then by force)."""
        if self._proc is not None and self._proc.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self._conn.send(("stop",))
            self._proc.join(1.0)
        self._kill()
