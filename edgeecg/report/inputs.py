"""The files a report is made from (:class:`Inputs`), found in or beside the run directory."""

from __future__ import annotations

import json
from pathlib import Path

from edgeecg.errors import EdgeECGError
from edgeecg.report.html import esc, not_run


class Inputs:
    """The files a report reads; each JSON is None when absent, and read errors are kept per file."""

    def __init__(self, run_dir: Path, cv=None, seeds=None, qrs=None, stream=None, target=None):
        self.run = Path(run_dir)
        self.used: dict[str, Path] = {}
        self.errors: dict[str, str] = {}
        self.config_text = self._text("config.toml", self.run / "config.toml")
        self.manifest = self._json("manifest.json", self.run / "manifest.json")
        self.metrics = self._json("metrics.json", self.run / "metrics.json")
        self.history = self._json("history.json", self.run / "history.json")
        self.cv = self._json("cv.json", self._find(cv, "cv.json", ("cv",)))
        self.seeds = self._json("seeds.json", self._find(seeds, "seeds.json", ("seeds",)))
        self.qrs = self._json("qrs.json", self._find(qrs, "qrs.json", ("qrs", "detect")))
        self.stream = self._json("stream.json", self._find(stream, "stream.json", ("stream",)))
        self.exports = self._per_target("export", "report.json", target)
        self.benches = self._per_target("bench", "bench.json", target)
        self.explains = []
        for p in sorted((self.run / "explain").glob("*/explain.json")) if (self.run / "explain").is_dir() else []:
            e = self._json(f"explain/{p.parent.name}/explain.json", p)
            if e is not None:
                self.explains.append((p.parent, e))

    def _find(self, given, name: str, folders: tuple[str, ...]) -> Path | None:
        if given is not None:
            p = Path(given)
            p = p / name if p.is_dir() else p
            if not p.exists():
                raise EdgeECGError(f"{p}: not found")
            return p
        candidates = (
            [self.run / name]
            + [self.run / f / name for f in folders]
            + [self.run.parent / name]
            + [self.run.parent / f / name for f in folders]
        )
        return next((c for c in candidates if c.is_file()), None)

    def _text(self, key: str, path: Path | None) -> str | None:
        if path is None or not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            self.errors[key] = f"{path}: {err}"
            return None
        self.used[key] = path
        return text

    def _per_target(self, folder: str, fname: str, target: str | None) -> dict:
        """``{target: (dir, json)}`` of ``RUN/folder/*/fname`` (only ``target``'s where given) that read."""
        root = self.run / folder
        dirs = [root / target] if target else sorted(p.parent for p in root.glob(f"*/{fname}")) if root.is_dir() else []
        out = {}
        for d in dirs:
            data = self._json(f"{folder}/{d.name}/{fname}", d / fname)
            if data is not None:
                out[d.name] = (d, data)
        return out

    def _json(self, key: str, path: Path | None):
        text = self._text(key, path)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            self.errors[key] = f"{path}: not valid JSON ({err.msg}, line {err.lineno})"
            self.used.pop(key, None)
            return None

    def absent(self, key: str, what: str) -> str:
        if key in self.errors:
            return f'<p class="err">could not read {esc(self.errors[key])}</p>'
        return not_run(what)
