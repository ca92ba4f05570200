"""Filling the C templates in ``firmware_export/templates/`` (a header's ``#define`` values and the
``prefix_`` / ``PREFIX_`` names), and writing and compiling the generated files."""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path

from edgeecg.atomic import write_text_atomic
from edgeecg.errors import EdgeECGError
from firmware_export.carray import c_identifier


def template(name: str) -> str:
    return resources.files("firmware_export").joinpath(f"templates/{name}").read_text()


def render_module(prefix: str, module: str, values: dict) -> dict[str, str]:
    """``{PREFIX_module.h: text, PREFIX_module.c: text}``: every ``#define PREFIX_MODULE_KEY ...`` line
    of the header set to ``values[KEY]`` (a template lacking a key is a bug, raised), then the
    ``prefix_`` and ``PREFIX_`` names renamed for ``prefix``."""
    p = c_identifier(prefix)
    tag = f"PREFIX_{module.upper()}_"
    files = {}
    for name in (f"{module}.h", f"{module}.c"):
        text = template(name)
        if name.endswith(".h"):
            seen = set()

            def put(m: re.Match) -> str:
                seen.add(m.group(1))
                return f"#define {tag}{m.group(1)} {values[m.group(1)]}"

            text = re.sub(rf"^#define {tag}(\w+) .*$", lambda m: put(m) if m.group(1) in values else m.group(0),
                          text, flags=re.M)
            missing = set(values) - seen
            if missing:
                raise RuntimeError(f"templates/{name} lacks #define {tag}{sorted(missing)[0]}")
        files[f"{p}_{name}"] = text.replace("prefix_", f"{p}_").replace("PREFIX_", f"{p.upper()}_")
    return files


def write_files(out_dir, files: dict[str, str]) -> list[Path]:
    """Write ``{file name: text}`` into ``out_dir`` (created), each atomically; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        write_text_atomic(out_dir / name, text)
        paths.append(out_dir / name)
    return paths


def compile_c(cmd: list[str], where) -> None:
    """Run the compiler command ``cmd``; a failure is one :class:`EdgeECGError` line naming ``where``
    and the compiler's first message."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        first = res.stderr.strip().splitlines()[0] if res.stderr.strip() else f"exit {res.returncode}"
        raise EdgeECGError(f"{cmd[0]} failed on {where}: {first}")
