"""Floor plans: PNG, JPEG (turned upright), PDF and SVG accepted; anything else named and refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from twin_server.editor.plan import PlanError, convert_plan

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "examples" / "pilot_floor_plan.png"


def _img(fmt: str, size=(120, 80), **kw) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, fmt, **kw)
    return out.getvalue()


def test_png_is_kept_as_it_is():
    data = PLAN.read_bytes()
    got = convert_plan(data)
    assert got.data == data and got.suffix == "png" and (got.width_px, got.height_px) == (1140, 780)


def test_a_phone_photo_is_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the stored 120 x 80 is shown 80 x 120
    got = convert_plan(_img("JPEG", exif=exif.tobytes()))
    assert got.suffix == "jpg" and (got.width_px, got.height_px) == (80, 120) and "upright" in got.note


def test_pdf_first_page_is_rendered():
    pdf = io.BytesIO()
    Image.open(PLAN).convert("RGB").save(pdf, "PDF", resolution=72)
    got = convert_plan(pdf.getvalue())
    assert got.suffix == "png" and max(got.width_px, got.height_px) == 3000
    assert got.width_px / got.height_px == pytest.approx(1140 / 780, rel=0.01)
    assert "page 1 of 1" in got.note


def test_svg_gets_a_size_when_it_has_only_a_viewbox():
    got = convert_plan(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1600 1000"><path d="M0 0H10"/></svg>'
    )
    assert (got.width_px, got.height_px) == (1600, 1000) and b'width="1600"' in got.data


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"site: x\nmachines: []\n", "text, not an image"),
        (b"PK\x03\x04" + b"\0" * 40, "ZIP archive"),
        (b"GIF89a" + b"\0" * 40, "GIF"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "damaged or incomplete"),
        (_img("PNG")[:200], "damaged or incomplete"),
        (b"%PDF-1.4 nonsense", "PDF cannot be opened"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><svg>&a;</svg>', "entity"),
        (b"<?xml version='1.0'?><html><body/></html>", "XML but not SVG"),
        (_img("PNG", size=(8, 8)), "too small"),
    ],
)
def test_what_is_not_a_floor_plan_is_named(data, needle):
    with pytest.raises(PlanError, match=needle):
        convert_plan(data)
