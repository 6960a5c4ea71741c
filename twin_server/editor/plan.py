"""Floor-plan files: accept a PNG/JPEG photo or scan, a PDF or an SVG export, or say why not.

The kind is told from the file's first bytes, never from its name. PNG and JPEG are decoded
fully (a truncated or damaged file is refused; a phone photo is turned upright by its EXIF
orientation); the first page of a PDF is rendered to PNG; an SVG is kept as vector if it
is a plain ``<svg>`` document without entity declarations. What is stored is content
addressed (``plans/STEM-HASH.EXT`` next to the site file), so an older site version keeps
the plan it was drawn on.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_PLAN_PX", "PlanError", "StoredPlan", "convert_plan", "plan_size"]

MAX_PLAN_PX = 8000  # longest side kept; a bigger scan is scaled down (a plan needs no more)
_PDF_LONG_SIDE_PX = 3000  # the first PDF page is rendered this big
_SVG_NS = "http://www.w3.org/2000/svg"


class PlanError(ValueError):
    """A file that cannot be a floor plan; the message says what it is and what is accepted."""


@dataclass(frozen=True)
class StoredPlan:
    """A floor plan ready to store: its bytes, file suffix and pixel size."""

    data: bytes
    suffix: str  # png, jpg or svg
    width_px: float
    height_px: float
    note: str = ""  # what was done to it (e.g. "PDF page 1 of 3 rendered at 3000 px")

    def name(self, stem: str) -> str:
        """Content-addressed file name, e.g. ``site-1a2b3c4d5e6f.png``."""
        return f"{stem}-{hashlib.sha256(self.data).hexdigest()[:12]}.{self.suffix}"


def _kind(data: bytes) -> str:
    head = data[:512].lstrip(b"\xef\xbb\xbf").lstrip()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or head.startswith(b"<!--"):
        return "svg" if b"<svg" in data[:4096] else "xml"
    return "unknown"


def _describe(data: bytes) -> str:
    if not data:
        return "the file is empty"
    if data.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive (e.g. a Word or Excel file)"
    if data.startswith(b"GIF8"):
        return "it is a GIF image"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "it is a TIFF image"
    if data.startswith(b"glTF"):
        return "it is a 3D model (GLB)"
    try:
        data[:200].decode("utf-8")
        return "it is text, not an image"
    except UnicodeDecodeError:
        return f"it starts with bytes {data[:8].hex(' ')}"


def _raster(data: bytes, kind: str) -> StoredPlan:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # structure and checksums
        img = Image.open(io.BytesIO(data))
        img.load()  # the pixels themselves: a truncated file fails here
    except Image.DecompressionBombError:
        raise PlanError("the image has too many pixels to be a floor plan (over 89 million)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PlanError(f"the {kind.upper()} file is damaged or incomplete: {exc}") from None
    w, h = img.size
    if w < 16 or h < 16:
        raise PlanError(f"the image is only {w} × {h} pixels: too small to draw a floor on")
    upright = ImageOps.exif_transpose(img) if kind == "jpeg" else img
    changed = upright is not img
    note = "turned upright (EXIF orientation)" if changed else ""
    if max(upright.size) > MAX_PLAN_PX:
        k = MAX_PLAN_PX / max(upright.size)
        upright = upright.resize((max(1, round(upright.width * k)), max(1, round(upright.height * k))))
        changed = True
        note = (note + "; " if note else "") + f"scaled down to {upright.width} × {upright.height} px"
    if not changed:
        return StoredPlan(data, "png" if kind == "png" else "jpg", float(w), float(h), note)
    out = io.BytesIO()
    if kind == "jpeg":
        upright.convert("RGB").save(out, "JPEG", quality=90)
    else:
        upright.save(out, "PNG", optimize=True)
    return StoredPlan(
        out.getvalue(), "jpg" if kind == "jpeg" else "png", float(upright.width), float(upright.height), note
    )


def _pdf(data: bytes) -> StoredPlan:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise PlanError(f"the PDF cannot be opened: {exc}") from None
    try:
        pages = len(pdf)
        if pages == 0:
            raise PlanError("the PDF has no pages")
        page = pdf[0]
        w_pt, h_pt = page.get_size()
        if w_pt <= 0 or h_pt <= 0:
            raise PlanError("the PDF's first page has no size")
        scale = _PDF_LONG_SIDE_PX / max(w_pt, h_pt)
        img = page.render(scale=scale).to_pil()
    finally:
        pdf.close()
    out = io.BytesIO()
    img.convert("RGB").save(out, "PNG", optimize=True)
    note = f"PDF page 1 of {pages} rendered at {img.width} × {img.height} px"
    return StoredPlan(out.getvalue(), "png", float(img.width), float(img.height), note)


def _length(text: str | None) -> float | None:
    if not text:
        return None
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*(px)?\s*", text)
    return float(m.group(1)) if m else None


def _svg(data: bytes) -> StoredPlan:
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data[:4096].upper():
        raise PlanError(
            "SVG files with a DOCTYPE or entity declarations are not accepted; export the plan "
            "as plain SVG, PDF or PNG"
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise PlanError(f"the SVG is not well-formed XML: {exc}") from None
    if root.tag not in (f"{{{_SVG_NS}}}svg", "svg"):
        raise PlanError(f"the XML file is not an SVG image (its root is <{root.tag}>)")
    box = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()) if v] or None
    w, h = _length(root.get("width")), _length(root.get("height"))
    if (w is None or h is None) and box is not None and len(box) == 4:
        w, h = box[2], box[3]
    if not w or not h or w <= 0 or h <= 0:
        raise PlanError("the SVG has no size: give its root a viewBox or a width and height in px")
    if root.get("width") is None or root.get("height") is None:
        # Browsers draw an <img> of an SVG without width/height at 300 × 150: fix the size.
        text = data.decode("utf-8")
        text = re.sub(r"<svg\b", f'<svg width="{w:g}" height="{h:g}"', text, count=1)
        data = text.encode("utf-8")
    return StoredPlan(data, "svg", float(w), float(h))


def convert_plan(data: bytes) -> StoredPlan:
    """Check and convert an uploaded floor plan.

    Raises
    ------
    PlanError
        Not a PNG, JPEG, PDF or SVG; or one that is damaged, empty, too small or too big.
    """
    kind = _kind(data)
    if kind in ("png", "jpeg"):
        return _raster(data, kind)
    if kind == "pdf":
        return _pdf(data)
    if kind == "svg":
        return _svg(data)
    what = "it is XML but not SVG" if kind == "xml" else _describe(data)
    raise PlanError(f"not a floor-plan image: {what}. Accepted: PNG or JPEG (photo or scan), PDF, SVG")


def plan_size(path: Path) -> tuple[float, float] | None:
    """Pixel size of a stored plan file (None if it is missing or unreadable)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        if path.suffix.lower() == ".svg":
            got = _svg(data)
            return got.width_px, got.height_px
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return float(img.width), float(img.height)
    except (PlanError, OSError, ValueError):
        return None
