"""``python -m samr1lib.data``: the training draw and the synthetic world.

    python -m samr1lib.data sample --refer-root R --dataset refcocog --split train --n 3000 --seed 0 --out DIR
    python -m samr1lib.data synth --out ROOT [--kind refer|reasonseg|both] [--n-images 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from ..prompt import POLICY_FRAME
from . import synthetic
from .draw import sample_refer, write_manifest
from .policy_dataset import build_policy_dataset
from .refer import REFER_SPLIT_BY, load_refer


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samr1lib.data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="draw the training instances (SAM-R1 §4.1) and build the policy dataset")
    s.add_argument("--refer-root", required=True, help="REFER data folder (holds refcocog/, images/, ...)")
    s.add_argument("--dataset", default="refcocog", choices=sorted(REFER_SPLIT_BY))
    s.add_argument("--split", default="train")
    s.add_argument("--split-by", default=None, help="refs(<split-by>).p; default unc / umd")
    s.add_argument("--n", type=int, default=3000, help="instances to draw (SAM-R1 §4.1: 3,000)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=POLICY_FRAME[0], help="policy image side (SAM-R1 §4.1: 840)")
    s.add_argument("--out", required=True, help="writes OUT/manifest.json and OUT/dataset/")
    s.add_argument("--manifest-only", action="store_true", help="skip building the image dataset")
    y = sub.add_parser("synth", help="write the synthetic world in the REFER and/or LISA layouts")
    y.add_argument("--out", required=True)
    y.add_argument("--kind", choices=("refer", "reasonseg", "both"), default="both")
    y.add_argument("--n-images", type=int, default=12, help="REFER images / ReasonSeg samples per split")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--size", type=int, nargs=2, default=(112, 112), metavar=("W", "H"))
    y.add_argument("--position-gradient", type=float, default=0.0)
    args = ap.parse_args(argv)

    if args.cmd == "sample":
        try:
            records = load_refer(args.refer_root, args.dataset, args.split, args.split_by)
            chosen = sample_refer(records, args.n, args.seed)
        except (FileNotFoundError, ValueError) as err:
            ap.error(str(err))
        source = {"dataset": args.dataset, "split": args.split, "split_by": records[0]["split_by"],
                  "refer_root": os.path.abspath(args.refer_root), "n_available": len(records)}
        write_manifest(os.path.join(args.out, "manifest.json"), chosen, args.seed, source)
        print(f"drew {len(chosen)} of {len(records)} expressions -> {os.path.join(args.out, 'manifest.json')}")
        if not args.manifest_only:
            ds = build_policy_dataset(chosen, os.path.join(args.out, "dataset"), size=args.size)
            print(f"policy dataset: {ds.num_rows} rows -> {os.path.join(args.out, 'dataset')}")
    else:
        kw = dict(seed=args.seed, size=tuple(args.size), position_gradient=args.position_gradient)
        if args.kind in ("refer", "both"):
            print("refer:", synthetic.write_refer_world(os.path.join(args.out, "refer"), n_images=args.n_images, **kw))
        if args.kind in ("reasonseg", "both"):
            print("reasonseg:", synthetic.write_reasonseg_world(
                os.path.join(args.out, "reasonseg"), n_per_split=args.n_images, **kw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
