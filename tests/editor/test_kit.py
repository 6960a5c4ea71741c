"""The editor's standard sensor kit is the hardware guide's wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_editor_kit_is_the_hardware_guide_wiring():
    js = (ROOT / "replay" / "src" / "editor-geom.js").read_text()
    body = re.search(r"export const KIT = \[(.*?)\];", js, re.S).group(1)
    kit = [
        json.loads(re.sub(r"(\w+):", r'"\1":', item).replace("'", '"'))
        for item in re.findall(r"\{[^}]*\}", body)
    ]
    guide = (ROOT / "hardware" / "README.md").read_text()
    block = yaml.safe_load(re.search(r"```yaml\n(.*?)```", guide, re.S).group(1))
    assert kit == block["machines"][0]["sensors"]
