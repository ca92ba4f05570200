"""Signal processing that a device can reproduce: resampling, causal filtering, beats, AAMI classes."""
