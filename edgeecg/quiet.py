"""A quieter command line: third-party warnings and logs that say nothing to an ``edgeecg`` user.

Where the noise of ``edgeecg train`` / ``quantize`` / ``bench`` comes from (measured with
``2>&1 | cat``, i.e. not on a terminal), and what silences it:

* ``W... torch/onnx/_internal/exporter/_registration.py:107] torchvision is not installed. Skipping
  torchvision::nms`` (4 lines, quantize): torch.onnx's exporter, python logging on that module's
  logger. A filter on the logger drops its records below ERROR.
* ``WARNING:root:Please consider to run pre-processing before quantization ...`` (2 lines, quantize):
  ``onnxruntime.quantization`` calls ``logging.warning`` on the *root* logger. A filter on the root
  logger drops these two messages only.
* ``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR`` and
  ``I0000 ... port.cc:153] oneDNN custom operations are on ...`` (2 + 2 lines, quantize): written to
  fd 2 by TensorFlow's shared libraries while they load, before any log level is read
  (``TF_CPP_MIN_LOG_LEVEL``, which ``edgeecg.export.tflite`` already sets to 3, does not stop them;
  ``TF_ENABLE_ONEDNN_OPTS=0`` would, but changes the arithmetic). An import hook runs
  ``import tensorflow`` inside :func:`native_output_filtered`, which drops exactly these lines.
* ``convert.py:846: UserWarning: Statistics for quantized inputs were expected ...`` and
  ``interpreter.py:457: UserWarning: Warning: tf.lite.Interpreter is deprecated ...`` (2 + 2, 10 lines,
  quantize): ``warnings.warn`` inside tf.lite's converter and calibrator. Counted, not shown.
* ``DeprecationWarning: `torch.jit.load` is deprecated`` (quantize, bench; shown under pytest or
  ``-W default``): the project exports TorchScript on purpose beside ``.pt2``. Counted, not shown.
* ``fully_quantize: 0, inference_type: 6, ...`` (2 lines, quantize): printed by TF's MLIR quantizer
  (C++, fd 2) during ``converter.convert()``, behind no log level; and ``INFO: Created TensorFlow
  Lite XNNPACK delegate for CPU.`` (quantize, bench): LiteRT's C++ logging when an interpreter is
  made (``TF_CPP_MIN_LOG_LEVEL`` does not reach it). Both need the call wrapped in
  :func:`native_output_filtered`: in ``edgeecg.export.tflite.convert`` and
  ``edgeecg.runtimes.TFLiteRunner.__init__``.
* tqdm bars when stderr is not a terminal (``train`` without ``--quiet``: one line of ~300 ``\\r``
  updates per epoch): ``train`` passes ``disable=not progress``, which forces the bar onto a pipe.
  Bars whose stream is not a TTY are switched off (the epoch lines ``tqdm.write`` prints stay).

:func:`quiet_third_party` does all of it but the two call sites, once, before a command runs;
``EDGEECG_VERBOSE=1`` turns it off. Hidden warnings, log records and native lines are counted,
and one line of our own says how many at exit
(``edgeecg: hid N third-party warnings; EDGEECG_VERBOSE=1 shows them``).
"""

from __future__ import annotations

import atexit
import importlib.abc
import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager

# Environment read by native libraries when they load: set only where the user has not set it.
ENV_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow C++ INFO and WARNING logs (after its libraries load)
    "GRPC_VERBOSITY": "ERROR",  # gRPC, loaded by TensorFlow
    "GLOG_minloglevel": "2",  # glog users (older TF builds)
}

# (category, message regex) of Python warnings that carry no information for a user.
WARNING_FILTERS = (
    (UserWarning, r"Statistics for quantized inputs were expected"),
    (UserWarning, r"\s*Warning: tf\.lite\.Interpreter is deprecated"),
    (Warning, r"`?torch\.jit\.\w+`? is deprecated"),
    (Warning, r".*torch\.jit\.(script|trace|load|save)\b.*deprecated"),
    (DeprecationWarning, r".*(np\.bool8|distutils|pkg_resources)"),
    (FutureWarning, r".*`?torch\.onnx\.\w+`?.*deprecated"),
)

# Loggers whose records below ERROR are noise: (logger name, level).
LOGGER_LEVELS = {
    "torch.onnx._internal.exporter._registration": logging.ERROR,  # "torchvision is not installed"
    "onnxscript": logging.ERROR,
    "absl": logging.ERROR,
    "tensorflow": logging.ERROR,
}

# Messages logged on the root logger by libraries (onnxruntime.quantization uses logging.warning).
ROOT_NOISE = (re.compile(r"Please consider (to run )?pre-?processing before quantization"),)

# Lines that native code prints straight to the file descriptors (see native_output_filtered).
NATIVE_NOISE = (
    re.compile(r"^fully_quantize: \d+, inference_type: \d+"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"^[IW]\d{4} [\d:. ]+\s+\d+ \S+\.cc:\d+\] "),  # absl/glog INFO and WARNING lines
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
    re.compile(r"^INFO: Initialized TensorFlow Lite runtime\."),
)

_state = {"done": False, "hidden": 0}


class _RootNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if any(p.search(msg) for p in ROOT_NOISE):
            _state["hidden"] += 1
            return False
        return True


class _BelowFilter(logging.Filter):
    """Drops (and counts) the records of one logger below ``level``."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            _state["hidden"] += 1
            return False
        return True


_WARNING_PATTERNS = [(c, re.compile(p, re.I)) for c, p in WARNING_FILTERS]


def _is_noise(message, category) -> bool:
    text = str(message)
    return any(issubclass(category, c) and p.match(text) for c, p in _WARNING_PATTERNS)


def _install_showwarning() -> None:
    """Known-noise warnings that would be shown are counted instead (others are shown as before)."""
    shown = warnings.showwarning
    if getattr(shown, "_edgeecg", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if _is_noise(message, category):
            _state["hidden"] += 1
            return
        shown(message, category, filename, lineno, file, line)

    showwarning._edgeecg = True
    warnings.showwarning = showwarning


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _tty_only_progress_bars() -> None:
    """tqdm bars whose stream is not a terminal are switched off (``tqdm.write`` lines still print)."""
    try:
        from tqdm import std
    except ImportError:
        return
    init = std.tqdm.__init__
    if getattr(init, "_edgeecg_tty_only", False):
        return

    def __init__(self, *args, **kwargs):
        stream = kwargs.get("file") or sys.stderr
        if not kwargs.get("disable") and not _isatty(stream):
            kwargs["disable"] = True
        init(self, *args, **kwargs)

    __init__._edgeecg_tty_only = True
    std.tqdm.__init__ = __init__


# Top-level modules whose *import* prints native lines (TensorFlow's oneDNN notice and the absl
# preamble are written by its shared libraries as they load, before any log level is read).
QUIET_IMPORTS = ("tensorflow",)


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` inside :func:`native_output_filtered`."""

    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        with native_output_filtered():
            self._inner.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._inner, name)


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds :data:`QUIET_IMPORTS` with the other finders and wraps their loader in :class:`_QuietLoader`."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in QUIET_IMPORTS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def quiet_third_party(summary: bool = True) -> bool:
    """Silence the third-party noise listed in this module's docstring (idempotent).

    Call it before a command imports torch, TensorFlow or onnxruntime (the native libraries read
    their log level from the environment when they load). ``EDGEECG_VERBOSE=1``: do nothing.
    ``summary``: at exit, print one line to stderr saying how many warnings were hidden (if any).
    Returns whether it acted.
    """
    if os.environ.get("EDGEECG_VERBOSE", "").strip() not in ("", "0"):
        return False
    if _state["done"]:
        return True
    _state["done"] = True
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    _install_showwarning()
    for name, level in LOGGER_LEVELS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _BelowFilter) for f in logger.filters):
            logger.addFilter(_BelowFilter(level))
    root = logging.getLogger()
    if not any(isinstance(f, _RootNoiseFilter) for f in root.filters):
        root.addFilter(_RootNoiseFilter())
    _tty_only_progress_bars()
    if not any(isinstance(f, _QuietImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImportFinder())
    if summary:
        atexit.register(_summary)
    return True


def _summary() -> None:
    n = _state["hidden"]
    if n:
        print(f"edgeecg: hid {n} third-party warning{'s' * (n != 1)}; EDGEECG_VERBOSE=1 shows them", file=sys.stderr)


@contextmanager
def native_output_filtered(patterns=NATIVE_NOISE):
    """Run a block with file descriptors 1 and 2 captured; afterwards write back every captured line
    that matches none of ``patterns`` (to the descriptor it came from), and count the others as
    hidden. For C/C++ code that prints without a log level (TF's ``fully_quantize: ...``).
    Python-level ``sys.stdout``/``sys.stderr`` are flushed around it so the order of lines is kept."""
    if os.environ.get("EDGEECG_VERBOSE", "").strip() not in ("", "0"):
        yield
        return
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (AttributeError, ValueError):
            pass
    try:
        fds = [1, 2]
        saved = [os.dup(fd) for fd in fds]
    except OSError:  # no real descriptors (an embedded interpreter): nothing to capture
        yield
        return
    captures = [tempfile.TemporaryFile() for _ in fds]
    try:
        for fd, cap in zip(fds, captures):
            os.dup2(cap.fileno(), fd)
        yield
    finally:
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except (AttributeError, ValueError):
                pass
        for fd, old in zip(fds, saved):
            os.dup2(old, fd)
            os.close(old)
        for fd, cap in zip(fds, captures):
            cap.seek(0)
            kept = []
            for line in cap.read().decode("utf-8", "replace").splitlines(keepends=True):
                if any(p.search(line.rstrip("\n")) for p in patterns):
                    _state["hidden"] += 1
                else:
                    kept.append(line)
            cap.close()
            if kept:
                os.write(fd, "".join(kept).encode("utf-8"))
