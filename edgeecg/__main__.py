"""``python -m edgeecg``: the command line (what ``torchrun ... -m edgeecg train`` starts on every rank)."""

from edgeecg.cli import main

if __name__ == "__main__":
    main(prog_name="edgeecg")
