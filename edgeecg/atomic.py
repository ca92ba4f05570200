"""Atomic writes: an output appears whole or not at all.

The temporary file or directory that is renamed into place is made by :mod:`tempfile`, which creates
it private (0600 / 0700) whatever the umask. Before it is renamed it gets the permissions an
ordinary ``open()`` or ``mkdir()`` would have given it (0666 / 0777 less the umask: typically 0644 /
0755), so generated C sources, reports and run directories are readable like any other file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgeecg.errors import EdgeECGError


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)      # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def normal_mode(directory: bool = False) -> int:
    """The mode ``open()`` (0666) or ``mkdir()`` (0777) gives a new file or directory under the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary file beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        try:        # replacing a file keeps its mode, as writing it in place would
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = normal_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def atomic_dir(path: Path, force: bool = False):
    """Build a directory under a temporary name; move it to ``path`` only when the block succeeds.

    An existing ``path`` is an error unless ``force``; with ``force`` it is replaced only after the
    new directory is complete, so a failure never loses the old one.
    """
    path = Path(path)
    if path.exists() and not force:
        raise EdgeECGError(f"{path}: already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, normal_mode(directory=True))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_dir(path: Path, files: dict[str, str], force: bool = False) -> Path:
    """A directory holding ``files`` (name: text), written as a whole by :func:`atomic_dir`."""
    with atomic_dir(Path(path), force=force) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return Path(path)
