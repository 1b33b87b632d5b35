"""The ``vireid`` command line: one entry point, one module per sub-command.

Each sub-command lives in ``vireid.commands.<module>`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported lazily, so ``vireid --help`` stays fast and a
sub-command pays only for what it uses.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from vireid.errors import VireidError

# name -> (module under vireid.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "generate the procedural synthetic cross-modal dataset (SYSU-MM01 layout)"),
    "evaluate-features": ("evaluate_features", "evaluate a features .npz under a dataset's official protocol"),
    "train": ("train", "train a model from a YAML recipe"),
    "test": ("test", "evaluate a trained run under its dataset's official protocol"),
    "extract": ("extract", "write the features .npz of a trained run for a dataset's test images"),
    "demo": ("demo", "the main job: synthetic data, CPU training, evaluation and a report"),
    "grid": ("grid", "run a grid file's recipes x variants x seeds (configs/grids/) and write one table"),
    "domains": ("domains", "derive a synthetic target domain (noise, lighting, colour, occlusion) of a dataset"),
    "adapt": ("adapt", "unsupervised cross-domain adaptation (DAN and its baselines)"),
    "hicmd-swaps": ("hicmd_swaps", "contact sheet of a Hi-CMD run's swaps (identity of one image, pose/illumination of another)"),
    "methods": ("methods", "list the implemented methods with their paper, seed section, recipes and status"),
    "report": ("report", "report of an evaluated run (tables, CMC, ranked lists, curves, t-SNE, Grad-CAM), or runs side by side"),
    "init-recipe": ("init_recipe", "write a training recipe fitted to a dataset's size and this machine"),
    "export": ("export", "export a trained run's embedding model to ONNX (preprocessing in its metadata)"),
    "index": ("index", "build, search, add to or delete from a gallery index (FAISS or Milvus + SQLite)"),
    "serve": ("serve", "serve a gallery index: search API (FastAPI) and web page"),
    "prepare-cuhk03": ("prepare_cuhk03", "extract the images of the original cuhk-03.mat (HDF5) for CUHK03-NP"),
    "train-text": ("train_text", "train a text-to-image model (MCMA) on a caption + image dataset"),
    "search-text": ("search_text", "text -> image: a trained MCMA run under the text-to-image protocol, or a query"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vireid", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--offline", action="store_true",
                        help="never download (e.g. pretrained: imagenet weights); same as VIREID_OFFLINE=1")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only == name:
            module = importlib.import_module(f"vireid.commands.{module_name}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Import only the module of the requested sub-command.
    only = next((a for a in argv if a in COMMANDS), None)
    if only is not None:  # registers every built-in method's parts (before a command's flags list their names)
        importlib.import_module("vireid.methods")
    parser = build_parser(only)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.offline:
        os.environ["VIREID_OFFLINE"] = "1"
    try:
        return int(args._run(args) or 0)
    except VireidError as exc:
        print(f"vireid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
    except OSError as exc:  # read-only folder, disk full, an output path that is a file...
        print(f"vireid {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM turned into TrainingInterrupted by the trainer
        signum = getattr(exc, "signum", None)
        name = "SIGTERM" if signum == 15 else "Ctrl-C" if signum in (None, 2) else f"signal {signum}"
        saved = getattr(exc, "saved", None)
        where = f"; saved {saved} (continue with --resume)" if saved else ""
        print(f"vireid {args.command}: interrupted ({name}){where}", file=sys.stderr)
        return 128 + int(signum) if signum else 130


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system failure: the path(s), what failed, and what to do for the usual ones."""
    import errno

    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    what = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free some space or choose another output folder",
        errno.EROFS: "choose a writable output folder",
        errno.EACCES: "check the permissions or choose another path",
        errno.EPERM: "check the permissions or choose another path",
        errno.ENOTDIR: "a component of the path is a file, not a folder",
        errno.EEXIST: "the path already exists",
        errno.EISDIR: "expected a file, found a folder",
        errno.ENOENT: "no such file or folder",
    }.get(exc.errno or 0)
    return f"{paths + ': ' if paths else ''}{what}{' (' + hint + ')' if hint else ''}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
