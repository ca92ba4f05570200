"""Label sets other than the AAMI beat classes (:mod:`edgeecg.processing.aami`)."""

# PTB-XL's five diagnostic superclasses, in output order (multi-label: one sigmoid each).
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
