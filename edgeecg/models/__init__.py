"""Model registry: compact PyTorch classifiers of one beat window plus its RR features.

Every model takes ``x`` of shape (batch, channels, window) and ``rr`` of shape (batch, n_rr) and returns
logits of shape (batch, 5). RR features are standardised inside the model with buffers set from
the training set, so a saved ``state_dict`` carries everything needed to classify a beat.
"""

from __future__ import annotations

from torch import nn

from edgeecg.config import DataConfig, rr_feature_names
from edgeecg.errors import EdgeECGError
from edgeecg.models.families import CNNBiLSTM, SpectrogramCNN
from edgeecg.models.nets import CNN, CNNLSTM, Hybrid
from edgeecg.models.stats import count_params, macs_per_beat

MODELS: dict[str, type[nn.Module]] = {"hybrid": Hybrid, "cnn": CNN, "cnn_lstm": CNNLSTM,
                                      "cnn_bilstm": CNNBiLSTM, "spectrogram_cnn": SpectrogramCNN}


def build_model(name: str, data: DataConfig, n_classes: int = 5, **params) -> nn.Module:
    """Instantiate a registered model by name for the beats that ``data`` describes."""
    if name not in MODELS:
        raise EdgeECGError(f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})")
    cls = MODELS[name]
    modes = getattr(cls, "modes", None)       # a model that reads the future names the modes it allows
    if modes and data.mode not in modes:
        raise EdgeECGError(f"model {name!r} reads the whole window backwards (bidirectional), so it is for "
                           f"[data] mode = {' or '.join(repr(m) for m in modes)} only, not {data.mode!r}")
    if getattr(cls, "needs_fs", False):
        params = {"fs": data.fs, **params}
    try:
        return cls(window=data.window, in_channels=data.channels,
                   n_rr=len(rr_feature_names(data)), n_classes=n_classes, **params)
    except TypeError as err:
        raise EdgeECGError(f"model {name!r}: bad [model.params] ({err})") from None


__all__ = ["MODELS", "build_model", "count_params", "macs_per_beat"]
