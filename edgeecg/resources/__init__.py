"""Files that ship inside the package: the deployment targets (``targets/*.toml``) and the training
recipes (``recipes/*.toml``). The repository's ``targets/`` and ``training/`` hold links to them, so
there is one copy, and an installed wheel finds them without a checkout."""

from __future__ import annotations

from importlib import resources


def is_path(name_or_path: str) -> bool:
    """Whether a ``--target`` or ``--config`` value names a file (ends in ``.toml`` or has a
    directory in it) rather than a shipped one."""
    return name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path


def names(kind: str) -> list[str]:
    """The names (file stems) of the shipped ``kind`` files."""
    folder = resources.files(__name__).joinpath(kind)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def read(kind: str, name: str) -> str | None:
    """The text of the shipped ``kind`` file ``name`` (no suffix), or None if there is none."""
    if name not in names(kind):
        return None
    return resources.files(__name__).joinpath(kind, f"{name}.toml").read_text(encoding="utf-8")
