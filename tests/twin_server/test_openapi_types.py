"""``/openapi.json`` is typed: every JSON answer of every route names a response model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from twin_server.api.app import create_app
from twin_server.api.viewer import create_viewer_app
from twin_server.settings import Settings

# Routes that answer with something other than JSON, and why. Each must declare its media type.
NOT_JSON = {
    ("get", "/api/scene/{site}.glb"): "a binary glTF file made by models3d",
    ("get", "/api/editor/{site}/files/{path}"): "a floor plan image or a GLB model next to the site file",
    ("get", "/api/audit.csv"): "the audit log as a CSV download",
}


class _NoSites:
    """A replay source with no sites: enough to build the stand-alone viewer and read its spec."""

    def site_ids(self) -> list[str]:
        return []


@pytest.fixture(scope="module", params=["server", "viewer"])
def spec(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pilot_site
) -> dict[str, Any]:
    """The spec of the server (sign-in on: the auth routes are part of it) and of the
    stand-alone viewer (``python -m twin_server.api.viewer``)."""
    d: Path = tmp_path_factory.mktemp("openapi")
    if request.param == "viewer":
        return create_viewer_app(_NoSites(), d / "data", auth=True).openapi()
    app = create_app(Settings(site=pilot_site, data_dir=d / "data", broker_host=None, auth=True))
    return app.openapi()


def _typed(schema: dict[str, Any]) -> bool:
    """A named model, or a list of named models; not ``{}`` nor a bare object of anything."""
    if "$ref" in schema:
        return True
    return schema.get("type") == "array" and _typed(schema.get("items", {}))


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def untyped_routes(spec: dict[str, Any]) -> list[str]:
    """``METHOD path: why`` of every operation whose success answer is not typed."""
    bad = []
    for method, path, op in _operations(spec):
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        if not ok:
            bad.append(f"{method.upper()} {path}: no 2xx response")
        for code, response in ok.items():
            content = response.get("content", {})
            if code == "204":
                if content:
                    bad.append(f"{method.upper()} {path}: 204 with a body")
                continue
            if not content:
                bad.append(f"{method.upper()} {path}: {code} without content")
            for media, body in content.items():
                if (method, path) in NOT_JSON:
                    if "json" in media or not body.get("schema"):
                        bad.append(f"{method.upper()} {path}: exempt from JSON, but answers {media} {body}")
                elif "json" not in media or not _typed(body.get("schema", {})):
                    bad.append(f"{method.upper()} {path}: {code} {media} {body.get('schema')}")
    return bad


def test_every_json_route_has_a_response_model(spec: dict[str, Any]) -> None:
    assert untyped_routes(spec) == []
    if "/health" not in spec["paths"]:  # the stand-alone viewer
        assert {"/api/replay/{site}", "/api/kpis/{site}", "/api/auth/me"} <= set(spec["paths"])
        return
    # The app's routers are all in the spec (the viewer's, the editor's, the auth routes).
    paths = {p for _, p, _ in _operations(spec)}
    routers = (
        "/health",
        "/api/replay/{site}",
        "/api/editor/{site}",
        "/api/auth/me",
        "/api/commissioning/{site}",
    )
    for path in routers:
        assert path in paths
    assert len(_operations(spec)) >= 55


def test_the_exemptions_are_real_routes(spec: dict[str, Any]) -> None:
    ops = {(m, p) for m, p, _ in _operations(spec)}
    if "/health" in spec["paths"]:  # the server has every route; the viewer a part of them
        assert set(NOT_JSON) <= ops


def test_an_untyped_route_is_found() -> None:
    """The check itself: a route typed ``dict[str, Any]`` (what FastAPI makes of a plain dict
    annotation), or with no schema at all, is reported."""
    broken = {
        "paths": {
            "/x": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "additionalProperties": True}
                                }
                            }
                        }
                    }
                }
            },
            "/y": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}},
            "/z": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
                            }
                        }
                    }
                }
            },
        }
    }
    assert len(untyped_routes(broken)) == 3
