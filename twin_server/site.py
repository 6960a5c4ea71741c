"""Site configuration: machines, workers, receivers, shift calendar and floor markings.

A site file is YAML. The contract's minimal site file (``docs/analyze-contract.md``) is a valid
subset: everything beyond ``site``, ``machines[].id``, ``machines[].zone`` and
``workers[].id/beacon`` has a default. Errors name the key path, e.g.
``machines[2].zone: polygon needs >= 3 points``.
"""

from __future__ import annotations

import math
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin_contract import vocabulary as vocab
from twin_server.geometry import Point2, point_in_polygon, polygon_area, polygon_centroid

__all__ = [
    "Break",
    "FloorPlan",
    "Machine",
    "Marking",
    "Receiver",
    "SensorWiring",
    "Shift",
    "Site",
    "SiteError",
    "Survey",
    "SurveyWalk",
    "Worker",
    "load_site",
    "parse_site",
    "point_in_polygon",
]

Id = Annotated[str, Field(pattern=vocab.ID_PATTERN)]
Point3 = tuple[float, float, float]
TASKS = vocab.TASKS


class SiteError(ValueError):
    """A site file that does not validate; the message names the key path of each problem."""

    def __init__(self, problems: list[str], source: str = "site") -> None:
        self.problems = problems
        head = f"{source}: {problems[0]}" if problems else f"{source}: invalid"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(head + more)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Named(_Model):
    """A thing with a display name: ``name: TEXT`` (and ``name_ja``), or ``name: {ja: .., en: ..}``."""

    @model_validator(mode="before")
    @classmethod
    def _bilingual_name(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("name"), dict):
            return data
        names = data["name"]
        unknown = sorted(set(names) - {"ja", "en"})
        if unknown:
            raise ValueError(f"name: languages are ja and en, not {unknown}")
        if not all(isinstance(v, str) for v in names.values()):
            raise ValueError("name: each language's name must be text")
        if "name_ja" in data:
            raise ValueError("name: give name.ja or name_ja, not both")
        # English (else Japanese) stays the plain name, so every reader of `.name` keeps working.
        return {**data, "name": names.get("en") or names.get("ja", ""), "name_ja": names.get("ja", "")}


def _polygon(points: list[Point2], *, min_points: int = 3) -> list[Point2]:
    if len(points) < min_points:
        raise ValueError(f"polygon needs >= {min_points} points, got {len(points)}")
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError("polygon points must be finite numbers")
    if abs(polygon_area(points)) < 1e-6:
        raise ValueError("polygon has zero area (points are collinear or repeated)")
    return points


class SensorWiring(_Model):
    """One sensor on a machine and how it is wired to the machine's Pi."""

    id: Id
    kind: Literal["light", "pressure", "switch"]
    channel: str = ""  # switch: the task it marks
    adc: Literal["mcp3008", "ads1115"] | None = None
    adc_channel: int | None = Field(default=None, ge=0, le=7)
    gpio: int | None = Field(default=None, ge=0, le=27)  # BCM numbering

    @model_validator(mode="after")
    def _wiring(self) -> SensorWiring:
        if self.kind == "switch":
            if self.channel not in TASKS[1:]:
                raise ValueError(f"switch channel must be one of {list(TASKS[1:])}")
        elif self.channel:
            raise ValueError(f"{self.kind} sensors take no channel")
        return self


class Machine(_Named):
    """A machine (NC lathe etc.) on the floor, with the zone in front of it."""

    id: Id
    name: str = ""
    name_ja: str = ""
    zone: list[Point2]
    position: Point2 | None = None  # floor position of the machine's centre, metres
    rotation_deg: float = 0.0  # about the vertical axis; 0 = front faces +y
    footprint: Point2 = (2.0, 1.2)  # width (x) and depth (y) in metres
    height_m: float = Field(default=1.8, gt=0)
    model: str | None = None  # GLB made by ``models3d prepare``, relative to the site file
    device: Id | None = None  # edge agent (Pi) at this machine
    sensors: list[SensorWiring] = Field(default_factory=list)

    _zone = field_validator("zone")(classmethod(lambda cls, v: _polygon(v)))

    @field_validator("footprint")
    @classmethod
    def _positive(cls, v: Point2) -> Point2:
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError("footprint sides must be > 0 m")
        return v

    @property
    def label(self) -> str:
        """Display name, falling back to the id."""
        return self.name or self.id

    @property
    def centre(self) -> Point2:
        """Floor position: the configured one, else the zone's centroid."""
        return self.position if self.position is not None else polygon_centroid(self.zone)

    @property
    def device_id(self) -> str:
        """The edge agent publishing this machine's sensors: ``device``, else ``pi-<id>`` (lower case)."""
        return self.device or vocab.default_machine_device(self.id)


class Worker(_Named):
    """A worker carrying a BLE beacon."""

    id: Id
    name: str = ""
    name_ja: str = ""
    beacon: Id


class Receiver(_Model):
    """A BLE receiver (usually the Pi at a machine, or a USB scanner)."""

    id: Id
    position: Point3
    machine: Id | None = None


class Break(_Named):
    """A break in the shift (local time of the site)."""

    start: time
    end: time
    name: str = "break"
    name_ja: str = ""


class Shift(_Model):
    """The daily shift calendar (local time of the site)."""

    start: time = time(8, 0)
    end: time = time(17, 0)
    breaks: list[Break] = Field(
        default_factory=lambda: [
            Break(start=time(10, 0), end=time(10, 10), name="morning break"),
            Break(start=time(12, 0), end=time(13, 0), name="lunch"),
            Break(start=time(15, 0), end=time(15, 10), name="afternoon break"),
        ]
    )

    @model_validator(mode="after")
    def _ordered(self) -> Shift:
        if self.end <= self.start:
            raise ValueError("shift end must be after its start")
        for b in self.breaks:
            if not self.start <= b.start < b.end <= self.end:
                raise ValueError(f"break {b.name!r} must lie inside the shift and end after it starts")
        return self


class Marking(_Model):
    """A line or area painted on the real floor."""

    kind: Literal["line", "area"] = "line"
    points: list[Point2]
    color: str = "#ffffff"
    width_m: float = Field(default=0.05, gt=0)
    label: str = ""

    @model_validator(mode="after")
    def _shape(self) -> Marking:
        if self.kind == "line" and len(self.points) < 2:
            raise ValueError("a line needs >= 2 points")
        if self.kind == "area":
            _polygon(self.points)
        return self


class FloorPlan(_Model):
    """The floor-plan image the site was drawn on, and how its pixels map to floor metres.

    Floor point ``(x, y)`` is at image pixel ``(origin_px[0] + x / m_per_px,
    origin_px[1] - y / m_per_px)``: image y points down, floor y up (away from the door).
    """

    image: str  # PNG, JPEG or SVG, relative to the site file
    m_per_px: float = Field(gt=0, allow_inf_nan=False)  # metres per image pixel (the scale)
    origin_px: Point2  # image pixel of floor point (0, 0)


class SurveyWalk(_Model):
    """A calibration walk: a beacon carried along known positions while receivers listen."""

    readings: str  # readings CSV (contract format) holding the walk's rssi rows, relative to the site file
    track: str  # CSV ``time, x_m, y_m``: where the beacon was, relative to the site file
    beacon: Id | None = None  # the beacon carried (default: every rssi row of the file)


class Survey(_Model):
    """A site survey for RSSI zones: fingerprints, calibration walks, where nobody walks."""

    points: str | None = None  # CSV ``x_m, y_m, z_m, receiver_id, rssi_dbm``, relative to the site file
    walks: list[SurveyWalk] = Field(default_factory=list)
    walk_height_m: float = Field(default=1.2, gt=0)  # beacon height during the walks
    blocked: list[list[Point2]] = Field(default_factory=list)  # floor areas nobody walks through

    @model_validator(mode="after")
    def _something(self) -> Survey:
        if self.points is None and not self.walks and not self.blocked:
            raise ValueError("a survey needs 'points', 'walks' or 'blocked' areas")
        for poly in self.blocked:
            _polygon(poly)
        return self


class Site(_Named):
    """One factory."""

    site: Id
    name: str = ""
    name_ja: str = ""
    timezone: str = "UTC"
    language: Literal["ja", "en"] = "en"
    floor: tuple[float, float] | None = None  # width x depth of the floor, metres
    machines: list[Machine] = Field(min_length=1)
    workers: list[Worker] = Field(default_factory=list)
    receivers: list[Receiver] = Field(default_factory=list)
    locators: list[Id] = Field(default_factory=list)  # commercial locator system ids
    shift: Shift = Field(default_factory=Shift)
    floor_markings: list[Marking] = Field(default_factory=list)
    survey: Survey | None = None  # RSSI site survey (optional; see docs/analysis.md)
    plan: FloorPlan | None = None  # floor-plan image drawn on in the site editor

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _references(self) -> Site:
        _unique("machines", [m.id for m in self.machines])
        _unique("workers", [w.id for w in self.workers])
        _unique("receivers", [r.id for r in self.receivers])
        _unique("workers[].beacon", [w.beacon for w in self.workers])
        machine_ids = {m.id for m in self.machines}
        if "none" in machine_ids:
            raise ValueError("'none' is reserved and cannot be a machine id")
        for i, r in enumerate(self.receivers):
            if r.machine is not None and r.machine not in machine_ids:
                raise ValueError(f"receivers[{i}].machine: unknown machine {r.machine!r}")
        for i, m in enumerate(self.machines):
            _unique(f"machines[{i}].sensors", [s.id for s in m.sensors])
        if self.survey is not None and (self.survey.points or self.survey.walks) and not self.receivers:
            raise ValueError("survey: a survey needs the site's receivers")
        return self

    # -- look-ups used everywhere -------------------------------------------------------
    @property
    def machine_ids(self) -> list[str]:
        """Machine ids in file order."""
        return [m.id for m in self.machines]

    @property
    def worker_ids(self) -> list[str]:
        """Worker ids in file order."""
        return [w.id for w in self.workers]

    def machine(self, machine_id: str) -> Machine:
        """The machine with this id (KeyError if none)."""
        for m in self.machines:
            if m.id == machine_id:
                return m
        raise KeyError(machine_id)

    def receiver_device(self, receiver_id: str) -> str:
        """The device publishing a receiver's RSSI: the Pi of its machine, else a bridge ``rx-<id>``."""
        for r in self.receivers:
            if r.id == receiver_id and r.machine is not None:
                return self.machine(r.machine).device_id
        return vocab.receiver_bridge_device(receiver_id)

    def publishing_devices(self) -> list[str]:
        """Every device that publishes for this site, in file order: the machines' Pis, the
        bridges of receivers not at a machine, then the locator systems."""
        devices = [m.device_id for m in self.machines]
        devices += [self.receiver_device(r.id) for r in self.receivers if r.machine is None]
        return list(dict.fromkeys([*devices, *self.locators]))

    def worker_by_beacon(self) -> dict[str, str]:
        """Beacon id -> worker id."""
        return {w.beacon: w.id for w in self.workers}

    def zone_at(self, x: float, y: float) -> str:
        """Machine id whose zone contains the floor point, else ``"none"``."""
        for m in self.machines:
            if point_in_polygon(x, y, m.zone):
                return m.id
        return "none"

    def floor_size(self) -> tuple[float, float, float, float]:
        """Floor extent ``(xmin, ymin, xmax, ymax)`` in metres covering every feature."""
        xs: list[float] = []
        ys: list[float] = []
        for m in self.machines:
            cx, cy = m.centre
            half = max(m.footprint) / 2
            xs += [cx - half, cx + half] + [p[0] for p in m.zone]
            ys += [cy - half, cy + half] + [p[1] for p in m.zone]
        for r in self.receivers:
            xs.append(r.position[0])
            ys.append(r.position[1])
        for mk in self.floor_markings:
            xs += [p[0] for p in mk.points]
            ys += [p[1] for p in mk.points]
        if self.floor is not None:
            xs += [0.0, self.floor[0]]
            ys += [0.0, self.floor[1]]
        margin = 1.0
        return min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin


def _unique(path: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{path}: duplicate id {i!r}")
        seen.add(i)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        # Tuple positions inside a point are not worth a path element of their own.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        path = _loc(loc)
        if err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{path}: {msg}" if path else msg)
    return problems


def parse_site(data: Any, source: str = "site") -> Site:
    """Validate a site mapping (e.g. parsed YAML).

    Raises
    ------
    SiteError
        With every problem as ``key.path[i]: message``.
    """
    if not isinstance(data, dict):
        raise SiteError([f"a site file must be a YAML mapping, got {type(data).__name__}"], source)
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        raise SiteError(_problems(exc), source) from None


def load_site(path: str | Path) -> Site:
    """Read and validate a site YAML file; any problem is a :class:`SiteError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError([f"cannot read site file: {exc.strerror or exc}"], str(p)) from None
    except UnicodeDecodeError:
        raise SiteError(["site file is not UTF-8 text"], str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SiteError([f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"], str(p)) from None
    return parse_site(data, str(p))
