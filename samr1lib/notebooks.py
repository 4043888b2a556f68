"""``python -m samr1lib.notebooks [NAMES...] [--params FILE.yaml]``: the entry of :mod:`samr1lib.experiments.notebooks`
(papermill batch runs of the numbered notebooks)."""

import sys

from .experiments.notebooks import main

if __name__ == "__main__":
    sys.exit(main())
