"""DDP training under torchrun: two CPU processes (gloo) write one run directory like one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from edgeecg.cli import main
from edgeecg.config import TrainConfig
from edgeecg.train import _epoch_order
from test_train_cli import RUN_FILES, TINY


def test_every_rank_draws_the_same_order_and_takes_a_disjoint_share():
    """The class-balanced sampler's draw is the same on every rank (same seed); rank r takes every
    world-th index of each global batch, so the ranks' shares partition the batch."""
    y = np.array([0] * 90 + [1] * 6 + [2] * 4)
    cfg = TrainConfig(batch_size=16)
    orders = [_epoch_order(y, cfg, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(orders[0], orders[1])
    batch = orders[0][:16]
    shares = [batch[r::2] for r in range(2)]
    assert sorted(torch.cat(shares).tolist()) == sorted(batch.tolist()) and len(shares[0]) == len(shares[1]) == 8


def _schema(obj):
    """Keys of nested dicts (values' types for leaves): what must match between 1 and 2 processes."""
    if isinstance(obj, dict):
        return {k: _schema(v) for k, v in obj.items()}
    return type(obj).__name__ if not isinstance(obj, (int, float)) else "number"


def test_torchrun_two_cpu_processes_write_the_same_run_directory(synth_dir, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY.replace("epochs = 3", "epochs = 2"))
    single = tmp_path / "single"
    res = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--out", str(single),
                                    "--config", str(tmp_path / "tiny.toml"), "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output

    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "edgeecg", "train", "--data", str(synth_dir), "--out", str(ddp),
           "--config", str(tmp_path / "tiny.toml"), "--quiet", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = {d: {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()} for d in (single, ddp)}
    assert files[ddp] == files[single] and RUN_FILES - {"plots/roc_val.png"} <= files[ddp]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ddp.")]     # no second, half-written copy
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (single, ddp))
    assert _schema(a) == _schema(b)
    assert len(json.loads((ddp / "history.json").read_text())) == 2
    assert f"wrote {ddp}" in proc.stdout
