"""``edgeecg explain``: what a trained model looks at, drawn over the beat.

* :mod:`~edgeecg.explain.attribution`: Grad-CAM and integrated gradients (captum), and how they are taken;
* :mod:`~edgeecg.explain.inputs`: a record's beats (annotated or detected), the export and its int8 model;
* :mod:`~edgeecg.explain.figures`: the matplotlib figures;
* :mod:`~edgeecg.explain.compute`: which beats are explained and everything written to ``RUN/explain/<record>/``;
* :mod:`~edgeecg.explain.command`: the click command.
"""

from edgeecg.explain.attribution import (
    IG_STEPS,
    Attribution,
    attribute,
    gradcam,
    integrated_gradients,
    last_conv,
    probabilities,
    rr_baseline,
    s_vs_n_window_attribution,
)
from edgeecg.explain.command import explain_command
from edgeecg.explain.compute import (
    class_mean_rows,
    class_name,
    default_beats,
    explain_beats,
    explain_run,
    run_data_dir,
)
from edgeecg.explain.figures import (
    CLASS_COLOURS,
    beat_figure,
    class_means_figure,
    figure_png,
    save_figure,
)
from edgeecg.explain.inputs import (
    Int8Model,
    RecordBeats,
    detect_r_peaks,
    find_export,
    load_record,
    record_beats,
    unannotated_record_beats,
)

__all__ = [
    "CLASS_COLOURS",
    "IG_STEPS",
    "Attribution",
    "Int8Model",
    "RecordBeats",
    "attribute",
    "beat_figure",
    "class_mean_rows",
    "class_means_figure",
    "class_name",
    "default_beats",
    "detect_r_peaks",
    "explain_beats",
    "explain_command",
    "explain_run",
    "figure_png",
    "find_export",
    "gradcam",
    "integrated_gradients",
    "last_conv",
    "load_record",
    "probabilities",
    "record_beats",
    "rr_baseline",
    "run_data_dir",
    "s_vs_n_window_attribution",
    "save_figure",
    "unannotated_record_beats",
]
