"""``python -m models3d prepare|scene``: one command per scan, one for the factory scene."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from models3d.errors import ScanError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of both subcommands."""
    parser = argparse.ArgumentParser(prog="python -m models3d", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="clean, level, scale and decimate one scan into a GLB")
    p.add_argument(
        "scan", help="OBJ (+MTL/textures), PLY (mesh or points), STL, GLB, glTF, USD/USDZ (usd-core)"
    )
    p.add_argument("--out", required=True, help="output .glb")
    p.add_argument(
        "--front",
        choices=["+x", "-x", "+y", "-y", "+z", "-z"],
        default=None,
        help="axis of the scan pointing out of the machine's front (default +z; -y for Z-up STL)",
    )
    p.add_argument(
        "--up",
        choices=["auto", "+x", "-x", "+y", "-y", "+z", "-z"],
        default="auto",
        help="axis of the scan pointing up (default: the floor's normal, else the format's)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--dimension",
        metavar="AXIS=METRES",
        help="a measured extent after levelling: width (x), height (y) or depth (z)",
    )
    size.add_argument("--unit", choices=["m", "cm", "mm", "in", "ft"], help="unit the scan is in")
    p.add_argument("--triangles", type=int, default=50_000, help="triangle budget (default 50000)")
    p.add_argument(
        "--min-component-share",
        type=float,
        default=0.005,
        help="components below this share of the surface area are debris (default 0.005)",
    )
    p.add_argument("--no-floor", action="store_true", help="do not look for a floor to remove")
    p.add_argument("--report", metavar="JSON", help="also write the report as JSON")

    s = sub.add_parser("scene", help="build the factory floor scene GLB from a site file")
    s.add_argument("--site", required=True, help="site YAML (twin_server.site format)")
    s.add_argument("--out", required=True, help="output .glb")
    return parser


def _prepare(args: argparse.Namespace) -> int:
    from models3d.orient import parse_dimension
    from models3d.prepare import PrepareOptions, prepare_file

    options = PrepareOptions(
        front=args.front,
        up=args.up,
        dimension=parse_dimension(args.dimension) if args.dimension else None,
        unit=args.unit,
        triangles=args.triangles,
        min_component_share=args.min_component_share,
        floor=not args.no_floor,
    )
    report = prepare_file(args.scan, args.out, options, args.report)
    print(report.text())
    return 0


def _scene(args: argparse.Namespace) -> int:
    from models3d.scene import write_scene

    summary = write_scene(args.site, args.out)
    print(summary.text())
    return 0


def _join_negative_axes(argv: Sequence[str]) -> list[str]:
    """``--front -y`` -> ``--front=-y``: argparse would take ``-y`` for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--front", "--up") and i + 1 < len(argv) and argv[i + 1] in ("-x", "-y", "-z"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(_join_negative_axes(sys.argv[1:] if argv is None else list(argv)))
    try:
        with warnings.catch_warnings():
            # library chatter (numpy, trimesh) is not for the user; our own warnings are in the report
            warnings.simplefilter("ignore")
            return _prepare(args) if args.command == "prepare" else _scene(args)
    except ScanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
