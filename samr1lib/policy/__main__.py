"""``python -m samr1lib.policy build OUT_DIR [--seed N]``: a tiny random Qwen2.5-VL, loadable like the real one."""

from __future__ import annotations

import argparse

from .tiny import build_tiny_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samr1lib.policy", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build a tiny random Qwen2.5-VL policy into OUT_DIR")
    build.add_argument("out_dir")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--min-pixels", type=int, default=56 * 56)
    build.add_argument("--max-pixels", type=int, default=112 * 112)
    args = parser.parse_args(argv)
    print(build_tiny_policy(args.out_dir, seed=args.seed, min_pixels=args.min_pixels, max_pixels=args.max_pixels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
