"""Two more model families: ``cnn_bilstm`` and ``spectrogram_cnn``.

Both take the same inputs as every model here (the beat window (batch, channels, window) and the RR
features (batch, n_rr)), so they train, evaluate and export through the same code. Neither has an
int8/C path (that path is Conv1d + ReLU + MaxPool + dense layers only, :mod:`edgeecg.export.fold`):
``edgeecg quantize`` writes their float formats (TorchScript, torch.export, ONNX, TFLite float
through a Keras mirror, :mod:`edgeecg.models.keras_mirror`) and reports the int8 ones as not available.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgeecg.models.nets import CNNLSTM, RRStandardiser, conv_stack


class CNNBiLSTM(CNNLSTM):
    """CNN front end, a *bidirectional* LSTM over the downsampled beat, fused with the RR MLP.

    The backward LSTM starts from the end of the window and runs back to its start, so it cannot
    run incrementally as samples stream in; offered for diagnostic mode only (the recipe also gives
    the RR stream the next RR interval). ``build_model`` refuses ``mode = "realtime"`` in one line.
    """

    modes = ("diagnostic",)

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5, **params):
        super().__init__(window, in_channels, n_rr, n_classes, bidirectional=True, **params)


def dft_basis(n_fft: int, n_bins: int) -> torch.Tensor:
    """Hann-windowed DFT rows, shape (2 * n_bins, n_fft): real parts of bins 0..n_bins-1, then the
    imaginary parts; ``basis @ frame`` is ``torch.stft(..., window=hann_window(n_fft, periodic=True),
    center=False)`` of that frame for those bins."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_bins, dtype=torch.float64)[:, None]
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    angle = 2 * math.pi * k * n / n_fft
    return torch.cat([window * torch.cos(angle), -window * torch.sin(angle)]).float()


class SpectrogramCNN(nn.Module):
    """STFT of the beat-centred window -> log magnitude of the bins up to ``max_hz`` -> a small 2-D
    CNN over (frequency, time), fused with the RR MLP by a dense head.

    The STFT runs *in the model*, as a fixed (non-trained) convolution with the Hann-windowed DFT
    basis (kernel ``n_fft``, stride ``hop``): the model takes the same beat window as every other
    model, augmentation and the data pipeline are shared, and every float exporter sees plain ops
    (conv, mul, add, log) instead of ``torch.stft``, which ONNX and TFLite convert poorly. On a device
    this front layer would be the DSP library's real FFT (CMSIS-DSP ``arm_rfft_fast_f32``, ESP-DSP)
    on each frame, which costs ``n_fft log n_fft`` instead of ``n_fft x bins`` multiplies; the 2-D
    CNN after it has no int8/C path here (the C generator is 1-D), so it runs as float TFLite.
    """

    needs_fs = True

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5, fs: float = 180.0,
                 n_fft: int = 32, hop: int = 4, max_hz: float = 45.0, channels=(8, 16), kernels=(3, 3),
                 rr_hidden: int = 8, hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        if n_fft > window:
            raise TypeError(f"n_fft {n_fft} is longer than the window ({window} samples)")
        self.n_fft, self.hop = n_fft, hop
        self.n_bins = min(n_fft // 2 + 1, int(math.floor(max_hz * n_fft / fs + 1e-9)) + 1)
        self.frames = (window - n_fft) // hop + 1
        self.rr_norm = RRStandardiser(n_rr)
        # the STFT: a convolution with fixed weights (not trained, not counted as parameters)
        self.stft = nn.Conv2d(1, 2 * self.n_bins, (1, n_fft), stride=(1, hop), bias=False)
        with torch.no_grad():
            self.stft.weight.copy_(dft_basis(n_fft, self.n_bins)[:, None, None, :])
        self.stft.weight.requires_grad_(False)
        self.features = conv_stack(in_channels, tuple(channels), tuple(kernels), dims=2)
        f, t = self.n_bins, self.frames
        for _ in channels:
            f, t = f // 2, t // 2
        if f < 1 or t < 1:
            raise TypeError(f"{len(channels)} pooling stages leave nothing of a {self.n_bins} x {self.frames} "
                            f"spectrogram")
        self.rr_mlp = nn.Sequential(nn.Linear(n_rr, rr_hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(channels[-1] * f * t + rr_hidden, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """Log magnitude (batch, channels, bins, frames) of each input channel."""
        spec = self.stft(x.unsqueeze(1))                 # (batch, 2F, C, T)
        re, im = spec[:, : self.n_bins], spec[:, self.n_bins:]
        return (0.5 * torch.log(re * re + im * im + 1e-6)).transpose(1, 2)

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        morph = torch.flatten(self.features(self.spectrogram(x)), 1)
        rhythm = self.rr_mlp(self.rr_norm(rr))
        return self.head(torch.cat([morph, rhythm], dim=1))
