"""samr1lib: the library behind the SAM-R1 notebooks (rewards, objective, data, evaluation, viewing).

Import submodules directly (``from samr1lib import rewards``); this package file stays light so
that ``import samr1lib`` does not pull in torch or transformers.
"""

__version__ = "0.1.0"
