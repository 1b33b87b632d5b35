"""``vireid synth``: write the procedural synthetic cross-modal dataset in the SYSU-MM01 layout.

See :mod:`vireid.data.synthetic.generator` for the layout, the tables and the guarantees (a pure
function of the arguments; written atomically; a non-empty folder is only replaced with --force).
"""

from __future__ import annotations

import argparse
import sys
import time

from vireid.data.synthetic import SyntheticConfig, generate_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to create (SYSU-MM01 layout)")
    parser.add_argument("--ids", type=int, default=200, help="number of identities, numbered 1..N (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed and arguments = same bytes")
    parser.add_argument("--images-per-camera", type=int, default=8,
                        help="most images of an identity in one camera; drawn in [ceil(M/2), M] (default 8)")
    parser.add_argument("--height", type=int, default=128, help="image height in pixels (default 128)")
    parser.add_argument("--width", type=int, default=64, help="image width in pixels (default 64)")
    parser.add_argument("--force", action="store_true",
                        help="replace a non-empty --out (only one this generator wrote: it has our meta.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--extras", action="store_true",
                        help="write the ground-truth sets instead (same people, same images): Market-1501 layout with "
                        "COCO keypoints, ATR parsing PNGs and captions; CUHK-PEDES, Occluded-REID and Partial-REID "
                        "layouts (vireid.data.synthetic.extras)")
    parser.add_argument("--workers", type=int, default=1, help="--extras: worker processes (output identical for any)")


def run(args: argparse.Namespace) -> int:
    config = SyntheticConfig(num_ids=args.ids, seed=args.seed, images_per_camera=args.images_per_camera,
                             height=args.height, width=args.width)
    config.validate()
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done == total or done % max(1, total // 20) == 0):
            print(f"\rvireid synth: identities {done}/{total}", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    if args.extras:
        from vireid.data.synthetic.extras import generate_extras

        meta = generate_extras(args.out, config, workers=max(1, args.workers), force=args.force, progress=progress)
        print(f"wrote {', '.join(f'{k}: {v} images' for k, v in meta['sets'].items())} to {args.out} "
              f"in {time.perf_counter() - start:.1f} s")
        print(f"  look at {args.out}/contact_sheet.png")
        return 0
    meta = generate_dataset(args.out, config, force=args.force, progress=progress)
    cams = ", ".join(f"{name} {info['images']}" for name, info in meta["cameras"].items())
    print(f"wrote {meta['num_images']} images of {config.num_ids} identities to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")
    print(f"  splits: train {meta['splits']['train']}, val {meta['splits']['val']}, test {meta['splits']['test']} ids; "
          f"{meta['test_infrared_queries']} infrared test queries")
    print(f"  images per camera: {cams}")
    print(f"  look at {args.out}/contact_sheet.png")
    return 0
