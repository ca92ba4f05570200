"""edgeecg: ECG arrhythmia classifiers from PhysioNet records to microcontrollers.

The Python interface (see ``docs/api.md``): :func:`load_device` loads an exported run and classifies
an ECG signal end to end as the device does; :func:`load_config` reads a recipe (a shipped one by
name) and :func:`load_target` a deployment target. Everything else is the ``edgeecg`` command.
"""

__version__ = "0.1.0"

from edgeecg.api import Beats, Device, load_device  # noqa: E402
from edgeecg.config import load_config, recipe_names  # noqa: E402
from edgeecg.errors import EdgeECGError  # noqa: E402
from edgeecg.targets import load_target, target_names  # noqa: E402

__all__ = ["Beats", "Device", "EdgeECGError", "load_config", "load_device", "load_target", "recipe_names",
           "target_names"]
