"""``vireid index build|search|add|delete``: a searchable gallery of a trained model's embeddings.

    vireid index build --run D (--images DIR --modality M | --manifest F | --run-test-set --modality M) --out G
    vireid index search G --query IMG --modality infrared -k 20 [--camera C ...] [--since T] [--until T]
    vireid index add G (--images DIR --modality M | --manifest F)
    vireid index delete G ID [ID ...]

The model is the run's (PyTorch) or, with ``--model model.onnx``, its ONNX export: both have the
same fingerprint, and an index refuses queries from any other model.
"""

from __future__ import annotations

import argparse
import json


def _source_arguments(p: argparse.ArgumentParser, with_run_test_set: bool) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of images (recursive; camera = first sub-folder unless --camera)")
    src.add_argument("--manifest", help="CSV/JSONL: path, modality [, camera, timestamp, track_id, identity]")
    if with_run_test_set:
        src.add_argument("--run-test-set", action="store_true",
                         help="the run's own dataset test images of --modality (identities known)")
    p.add_argument("--modality", help="modality of the --images (visible/infrared)")
    p.add_argument("--camera", help="camera name for every --images image")


def _model_arguments(p: argparse.ArgumentParser, run_required: bool) -> None:
    p.add_argument("--run", required=run_required, help="run folder written by vireid train")
    p.add_argument("--checkpoint", default="best", help="best (default), last, or a path")
    p.add_argument("--model", help="an .onnx file from vireid export, used instead of the run's PyTorch model")
    p.add_argument("--flip", action="store_true", help="average with the mirrored image's embedding")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="embed a gallery and write an index folder")
    _model_arguments(b, run_required=False)
    _source_arguments(b, with_run_test_set=True)
    b.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    b.add_argument("--kind", choices=["flat", "ivfpq", "hnsw", "milvus"], default="flat",
                   help="flat = exact inner product (default); ivfpq/hnsw approximate; milvus = Milvus collection")
    b.add_argument("--nlist", type=int, default=1024, help="ivfpq: inverted lists")
    b.add_argument("--pq-m", type=int, default=64, help="ivfpq: sub-quantisers (must divide the embedding size)")
    b.add_argument("--nprobe", type=int, default=16, help="ivfpq: inverted lists visited per query (default 16)")
    b.add_argument("--rescore", type=int, default=0, metavar="R",
                   help="ivfpq: re-rank the top k*R PQ candidates by exact inner products with stored vectors "
                        "(0 = off, the default; costs the vectors' memory)")
    b.add_argument("--rescore-dtype", choices=["float32", "float16"], default="float32",
                   help="ivfpq --rescore: stored vectors in float32 (exact) or float16 (half the memory)")
    b.add_argument("--milvus-uri", help="milvus: a local .db file (milvus-lite) or a server URI")
    s = sub.add_parser("search", help="rank the gallery for a query image")
    s.add_argument("index", help="index folder")
    _model_arguments(s, run_required=False)
    s.add_argument("--query", required=True, help="query image file")
    s.add_argument("--modality", required=True, help="modality of the query (visible/infrared)")
    s.add_argument("-k", type=int, default=10, help="how many hits (default 10)")
    s.add_argument("--camera", action="append", help="only these gallery cameras (repeatable)")
    s.add_argument("--gallery-modality", help="only gallery images of this modality")
    s.add_argument("--since", help="only gallery images at/after this time (Unix seconds or ISO 8601)")
    s.add_argument("--until", help="only gallery images at/before this time")
    s.add_argument("--json", action="store_true", help="print the hits as JSON")
    a = sub.add_parser("add", help="embed more images into an index")
    a.add_argument("index", help="index folder")
    _model_arguments(a, run_required=False)
    _source_arguments(a, with_run_test_set=False)
    d = sub.add_parser("delete", help="remove gallery entries by id")
    d.add_argument("index", help="index folder")
    d.add_argument("ids", nargs="+", type=int, help="gallery ids")


def _embedder(args: argparse.Namespace):
    from vireid.api import load
    from vireid.errors import ConfigError

    if args.model:
        return load(args.model)
    if not args.run:
        raise ConfigError("give --run (a trained run folder) or --model (an .onnx export)")
    return load(args.run, checkpoint=args.checkpoint)


def _records(args: argparse.Namespace):
    from vireid.errors import ConfigError
    from vireid.retrieval.sources import records_from_folder, records_from_manifest

    if args.manifest:
        return records_from_manifest(args.manifest), []
    if not args.modality:
        raise ConfigError("--images needs --modality (visible or infrared)")
    return records_from_folder(args.images, args.modality, args.camera), [args.images]


def _embed_records(embedder, records, flip: bool):
    import numpy as np

    from vireid.types import Modality

    paths = [r.path for r in records]
    modality = [Modality.parse(r.modality) for r in records]
    return embedder.embed(paths, modality, flip=flip) if paths else np.zeros((0, 0), np.float32)


def run(args: argparse.Namespace) -> int:
    from vireid.retrieval.index import GalleryIndex

    if args.action == "delete":
        removed = GalleryIndex.open(args.index).delete(args.ids)
        print(f"removed {removed} of {len(args.ids)} ids from {args.index}")
        return 0
    if args.action == "build":
        return _build(args)
    embedder = _embedder(args)
    index = GalleryIndex.open(args.index)
    if args.action == "add":
        records, _ = _records(args)
        ids = index.add(records, _embed_records(embedder, records, args.flip), model_fingerprint=embedder.fingerprint)
        print(f"added {len(ids)} images to {args.index} (ids {ids[0]}-{ids[-1]}); {len(index)} in all")
        return 0
    query = embedder.embed([args.query], args.modality, flip=args.flip)
    (hits,) = index.search(query, model_fingerprint=embedder.fingerprint, k=args.k, camera=args.camera,
                           modality=args.gallery_modality, since=args.since, until=args.until)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
    else:
        for h in hits:
            time = h.to_dict()["time"] or "-"
            print(f"{h.rank:3d}  {h.score:.4f}  id {h.id}  cam {h.camera}  {time}  {h.path}")
    return 0


def _build(args: argparse.Namespace) -> int:
    import os

    from vireid.errors import ConfigError
    from vireid.retrieval.index import GalleryIndex
    from vireid.retrieval.sources import records_from_run_dataset

    if args.kind != "ivfpq" and args.rescore:
        raise ConfigError(f"--rescore applies to --kind ivfpq only, not {args.kind}")
    embedder = _embedder(args)
    if args.run_test_set:
        from vireid.commands._common import load_run_config

        if not args.run or not args.modality:
            raise ConfigError("--run-test-set needs --run and --modality")
        records, _ = records_from_run_dataset(load_run_config(args.run), args.modality)
    else:
        records, _ = _records(args)
    # thumbnails are served only from under the images' common folder (and the index's uploads/)
    roots = [os.path.commonpath([os.path.dirname(r.path) for r in records])]
    vectors = _embed_records(embedder, records, args.flip)
    params = ({"nlist": args.nlist, "pq_m": args.pq_m, "nprobe": args.nprobe, "rescore": args.rescore,
               "rescore_dtype": args.rescore_dtype} if args.kind == "ivfpq" else {})
    index = GalleryIndex.create(args.out, fingerprint=embedder.fingerprint, model_name=embedder.model_name,
                                preprocessing=embedder.spec, records=records, vectors=vectors, kind=args.kind,
                                image_roots=roots, milvus_uri=args.milvus_uri, **params)
    print(f"wrote {args.out}: {len(index)} images, {index.dim}-d, {args.kind}, model {embedder.fingerprint}")
    return 0
