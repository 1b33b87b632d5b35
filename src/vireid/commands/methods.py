"""``vireid methods [--json]``: every registered method with its paper, seed section, recipes and status."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON list")


def run(args: argparse.Namespace) -> int:
    from vireid.methods import describe_methods

    methods = describe_methods()
    if args.json:
        print(json.dumps(methods, indent=2))
        return 0
    for m in methods:
        print(f"{m['name']}: {m['paper']}")
        print(f"  source: {m['seed']} ({m['reference']})")
        print(f"  recipes: {', '.join('configs/' + r for r in m['recipes']) or '-'}")
        parts = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in m["parts"].items())
        print(f"  parts: {parts or '-'}" + (f"; commands: {', '.join(m['commands'])}" if m["commands"] else ""))
        if m["requires_aux"]:
            print(f"  auxiliary inputs: {', '.join(m['requires_aux'])} (data.aux; missing entries: {m['aux_policy']})")
        print(f"  status: {m['status']}")
    return 0
