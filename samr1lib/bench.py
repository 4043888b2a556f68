"""``python -m samr1lib.bench reward | learning | base | localisation``: the entry of :mod:`samr1lib.experiments.bench`."""

import sys

from .experiments.bench import main

if __name__ == "__main__":
    sys.exit(main())
