"""edgeecg: ECG arrhythmia classifiers from PhysioNet records to microcontrollers.

The Python interface (see ``docs/api.md``): :func:`train_recipe` trains a recipe into a run directory,
:func:`export_run` quantizes and exports it for a target, :func:`bench_run` runs every artifact on the
same beats, and
:func:`load_device` loads an export and classifies an ECG signal end to end as the device does;
:func:`load_config` reads a recipe (a shipped one by name) and :func:`load_target` a target. The
``edgeecg`` command calls these.
"""

__version__ = "0.1.0"

from edgeecg.api import Beats, Device, TrainedRun, bench_run, export_run, load_device, train_recipe  # noqa: E402
from edgeecg.config import load_config, recipe_names  # noqa: E402
from edgeecg.errors import EdgeECGError  # noqa: E402
from edgeecg.targets import load_target, target_names  # noqa: E402

__all__ = ["Beats", "Device", "EdgeECGError", "TrainedRun", "bench_run", "export_run", "load_config", "load_device",
           "load_target", "recipe_names", "target_names", "train_recipe"]
