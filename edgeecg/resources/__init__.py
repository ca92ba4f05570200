"""Files that ship inside the package: the deployment targets (``targets/*.toml``) and the training
recipes (``recipes/*.toml``). The repository's ``targets/`` and ``training/`` hold links to them, so
there is one copy, and an installed wheel finds them without a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgeecg.errors import EdgeECGError


def is_path(name_or_path: str) -> bool:
    """Whether a ``--target`` or ``--config`` value names a file (ends in ``.toml`` or has a
    directory in it) rather than a shipped one."""
    return name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path


def read_file(path: Path, what: str) -> str:
    """The text of a user's ``what`` file (a recipe, a target), or one line naming it and the problem."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgeECGError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EdgeECGError(f"{path}: cannot read the {what} ({err})") from None


def names(kind: str) -> list[str]:
    """The names (file stems) of the shipped ``kind`` files."""
    folder = resources.files(__name__).joinpath(kind)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def read(kind: str, name: str) -> str | None:
    """The text of the shipped ``kind`` file ``name`` (no suffix), or None if there is none."""
    if name not in names(kind):
        return None
    return resources.files(__name__).joinpath(kind, f"{name}.toml").read_text(encoding="utf-8")


def on_top(base: dict, over: dict) -> dict:
    """``over``'s keys on top of ``base``'s (a file that names a ``base``): tables merge key by key,
    anything else (a value, an array such as ``[[sources]]``) replaces the base's."""
    out = dict(base)
    for key, value in over.items():
        out[key] = on_top(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
