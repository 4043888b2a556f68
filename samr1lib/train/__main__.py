"""``python -m samr1lib.train --preset smoke [--config file.yaml] [key=value ...] [--no-resume]``: one training job.

Values come from TrainConfig's defaults (the SAM-R1 paper run) <- the preset <- the YAML file <- key=value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import typing
from typing import Sequence

from ..config import TrainConfig, field_docs, load_config
from ..presets import PRESETS
from .launch import paper_launch_command
from .run import train, world_size


def fields_help(width: int = 100) -> str:
    """Every TrainConfig field with its type, paper default and docstring (the epilog of ``--help``)."""
    docs, hints, lines = field_docs(), typing.get_type_hints(TrainConfig), ["fields (key=value; default = the paper run):"]
    defaults = TrainConfig()
    for name in docs:
        tp = hints[name]
        kind = ("one of " + " | ".join(map(str, typing.get_args(tp)))) if typing.get_origin(tp) is typing.Literal \
            else getattr(tp, "__name__", str(tp))
        lines.append(f"  {name} ({kind}; default {getattr(defaults, name)!r})")
        lines += textwrap.wrap(docs[name], width=width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.train", description=__doc__.split("\n")[0],
                                 epilog=fields_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smoke", help=f"one of {', '.join(PRESETS)} (default smoke)")
    ap.add_argument("--config", default=None, help="a YAML file of field: value overriding the preset")
    ap.add_argument("--no-resume", action="store_true", help="do not resume from the last checkpoint in output_dir")
    ap.add_argument("--print-launch", action="store_true", help="print the paper's accelerate launch command and exit")
    ap.add_argument("--estimate-memory", action="store_true",
                    help="print the run's GPU memory per GPU, item by item (parameters counted on the meta device, "
                         "DeepSpeed's ZeRO-3 estimator), and exit")
    ap.add_argument("--card-gib", type=float, default=80.0, help="GPU memory for --estimate-memory (default 80)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of TrainConfig fields (listed below)")
    a = ap.parse_args(argv)
    if a.print_launch:
        print(" ".join(paper_launch_command()))
        return 0
    try:
        cfg = load_config(a.preset, a.config, a.overrides, world_size=world_size())
    except ValueError as e:
        ap.error(str(e))
    if a.estimate_memory:
        from .memory import report  # DeepSpeed and SAM2 are imported only for this

        print(report(cfg, a.card_gib))
        return 0
    print(json.dumps(train(cfg, resume=not a.no_resume)))
    return 0


if __name__ == "__main__":
    code = main()
    if world_size() > 1:
        # ~1 multi-process run in 12 aborted at interpreter exit after training had finished (accelerate 1.15,
        # gloo, 2 CPU processes); flushing and leaving hard avoids it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
