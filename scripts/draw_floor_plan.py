"""Draw a floor plan of a site as a CAD-like PNG (walls, machines, painted lines, a scale bar).

The pilot's real plan is not public, so ``examples/pilot_floor_plan.png`` is drawn from
``examples/pilot_site.yaml`` with this script: the site editor's walkthrough and its browser
test load it, set its scale from the 16 m wall and draw the site on it. Its geometry is exact
(``PX_PER_M`` pixels per metre, floor corner (0, 0) at pixel ``origin_px``), so a test can
compute where on the image a floor point is.

    .venv/bin/python scripts/draw_floor_plan.py [--site examples/pilot_site.yaml] [--out PNG]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
PX_PER_M = 60
MARGIN_PX = 90
WALL_PX = 6
LINE_PX = 2
DOOR_M = (7.0, 9.0)  # the door: a gap in the wall at y = 0


def plan_geometry(floor_m: tuple[float, float]) -> dict:
    """Image size and the pixel of floor point (0, 0) for a floor of ``floor_m`` metres."""
    w = round(floor_m[0] * PX_PER_M) + 2 * MARGIN_PX
    h = round(floor_m[1] * PX_PER_M) + 2 * MARGIN_PX
    return {"size_px": (w, h), "origin_px": (MARGIN_PX, h - MARGIN_PX), "px_per_m": PX_PER_M}


def draw_plan(site_path: Path, out: Path) -> dict:
    """Draw the site's floor plan to ``out``; returns :func:`plan_geometry`."""
    import yaml

    doc = yaml.safe_load(site_path.read_text(encoding="utf-8"))
    floor = tuple(doc["floor"])
    geo = plan_geometry(floor)
    ox, oy = geo["origin_px"]

    def px(x: float, y: float) -> tuple[int, int]:
        return round(ox + x * PX_PER_M), round(oy - y * PX_PER_M)

    img = Image.new("RGB", geo["size_px"], "white")
    g = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=18)
    small = ImageFont.load_default(size=14)
    fw, fd = floor

    # Every line is centred on its floor coordinate (a pixel column i spans [i, i + 1), so a
    # line of even width 2k covers i - k .. i + k - 1): plan lines snap to exact metres.
    def band(a: tuple[float, float], b: tuple[float, float], width: int, fill: str) -> None:
        (x0, y0), (x1, y1) = px(*a), px(*b)
        k = width // 2
        if y0 == y1:
            g.rectangle([min(x0, x1) - k, y0 - k, max(x0, x1) + k - 1, y0 + k - 1], fill=fill)
        else:
            g.rectangle([x0 - k, min(y0, y1) - k, x0 + k - 1, max(y0, y1) + k - 1], fill=fill)

    # Walls, with the door gap in the front wall.
    band((0, 0), (DOOR_M[0], 0), WALL_PX, "black")
    band((DOOR_M[1], 0), (fw, 0), WALL_PX, "black")
    for a, b in (((fw, 0), (fw, fd)), ((fw, fd), (0, fd)), ((0, fd), (0, 0))):
        band(a, b, WALL_PX, "black")
    g.arc(
        [
            *px(DOOR_M[0], DOOR_M[1] - DOOR_M[0]),
            *px(DOOR_M[1] + (DOOR_M[1] - DOOR_M[0]), -(DOOR_M[1] - DOOR_M[0])),
        ],
        180,
        270,
        fill="#777777",
        width=1,
    )
    g.text(px((DOOR_M[0] + DOOR_M[1]) / 2, -0.35), "DOOR", fill="black", font=small, anchor="mm")
    # Machines: outline and number.
    for m in doc["machines"]:
        cx, cy = m["position"]
        w, d = m["footprint"]
        corners = [
            (cx - w / 2, cy - d / 2),
            (cx + w / 2, cy - d / 2),
            (cx + w / 2, cy + d / 2),
            (cx - w / 2, cy + d / 2),
        ]
        for i in range(4):
            band(corners[i], corners[(i + 1) % 4], LINE_PX, "black")
        g.text(px(cx, cy), f"No. {m['id'].lstrip('M')}", fill="black", font=font, anchor="mm")
    # Painted floor markings: lines solid, areas outlined and hatched.
    for mk in doc.get("floor_markings", []):
        pts = [px(x, y) for x, y in mk["points"]]
        ring = mk["points"] if mk.get("kind", "line") == "line" else [*mk["points"], mk["points"][0]]
        for a, b in itertools.pairwise(ring):
            band(tuple(a), tuple(b), LINE_PX, "#333333")
        if mk.get("kind", "line") == "area":
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            tile = Image.new("RGB", (max(xs) - min(xs) - 4, max(ys) - min(ys) - 4), "white")
            tg = ImageDraw.Draw(tile)
            for k in range(0, tile.width + tile.height, 16):
                tg.line([(k, 0), (k - tile.height, tile.height)], fill="#bbbbbb", width=1)
            img.paste(tile, (min(xs) + 2, min(ys) + 2))
            if mk.get("label"):
                g.text(
                    ((min(xs) + max(xs)) // 2, (min(ys) + max(ys)) // 2),
                    mk["label"].upper(),
                    fill="black",
                    font=small,
                    anchor="mm",
                )
    # Dimension of the back wall and a scale bar.
    y_dim = fd + 0.7
    g.line([px(0, y_dim), px(fw, y_dim)], fill="black", width=1)
    for x in (0, fw):
        g.line([px(x, y_dim - 0.15), px(x, y_dim + 0.15)], fill="black", width=1)
    g.text(px(fw / 2, y_dim + 0.3), f"{fw:.2f} m", fill="black", font=font, anchor="mm")
    for k in range(6):
        g.line([px(k, -0.9), px(k, -1.1)], fill="black", width=1)
        g.text(px(k, -1.3), str(k), fill="black", font=small, anchor="mm")
    g.line([px(0, -1.0), px(5, -1.0)], fill="black", width=1)
    g.text(px(5.5, -1.3), "m", fill="black", font=small, anchor="mm")
    g.text(
        px(fw, -1.3),
        f"{doc.get('name', doc['site'])}: floor plan (drawn from the site file)",
        fill="black",
        font=small,
        anchor="rm",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    return geo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "examples" / "pilot_site.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "pilot_floor_plan.png")
    args = parser.parse_args()
    geo = draw_plan(args.site, args.out)
    print(
        f"{args.out}: {geo['size_px'][0]} x {geo['size_px'][1]} px, {PX_PER_M} px/m, "
        f"floor (0, 0) at {geo['origin_px']}"
    )


if __name__ == "__main__":
    main()
