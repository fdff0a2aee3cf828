"""The county's towns (乡镇/街道) and grids (网格): which one a report's location falls in.

`[towns] file` in config.toml names a GeoJSON FeatureCollection. Each Feature has a Polygon
or MultiPolygon geometry (coordinates [longitude, latitude], WGS-84, holes honoured) and the
properties `name` (required, unique within its level, at most 40 characters) and `level`
("town", the default, or "grid"). A point outside every town is 未分区 (`Zone.town` None).

A bad file is refused with one line naming the feature and the problem: not GeoJSON, a
geometry of another kind, coordinates out of range, too many points (counted before any
geometry is built, so a hostile file costs little), an invalid polygon (shapely's own
explanation), a missing or repeated name, or two towns (or two grids) that overlap by more
than OVERLAP_SHARE of the smaller one (shared borders and digitising slivers are fine).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FEATURES = 1_000
MAX_POINTS_PER_FEATURE = 20_000
MAX_POINTS = 200_000
MAX_NAME_CHARS = 40
OVERLAP_SHARE = 0.005
LEVELS = ("town", "grid")


class TownsError(ValueError):
    """One line naming the file, the feature and what is wrong with it."""


@dataclass(frozen=True)
class Zone:
    town: str | None  # None: outside every town (未分区)
    grid: str | None


class _Level:
    """The polygons of one level, in file order, with a spatial index."""

    def __init__(self, names: list[str], shapes: list[Polygon | MultiPolygon]) -> None:
        self.names = tuple(names)
        self.shapes = shapes
        self.tree = shapely.STRtree(shapes)
        for polygon in shapes:
            shapely.prepare(polygon)

    def locate(self, point: shapely.Point) -> str | None:
        hits = self.tree.query(point, predicate="intersects")
        return self.names[min(hits)] if len(hits) else None


class Towns:
    """The towns and grids of a county; `Towns.none()` when no file is configured."""

    def __init__(self, towns: _Level | None = None, grids: _Level | None = None) -> None:
        self._towns = towns
        self._grids = grids
        self.names: tuple[str, ...] = towns.names if towns else ()
        self.grids: tuple[str, ...] = grids.names if grids else ()

    @classmethod
    def none(cls) -> Towns:
        return cls()

    def first(self) -> tuple[str, float, float] | None:
        """The file's first town with a point inside it, ``(name, lat, lon)``; None if none."""
        if self._towns is None:
            return None
        point = self._towns.shapes[0].representative_point()
        return self._towns.names[0], point.y, point.x

    def __bool__(self) -> bool:
        return self._towns is not None

    def __eq__(self, other: object) -> bool:
        """Two sets of towns are the same when their polygons are (a setting's equality)."""
        if not isinstance(other, Towns):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return tuple(
            (level.names, tuple(shape.wkb for shape in level.shapes)) if level else None
            for level in (self._towns, self._grids)
        )

    @classmethod
    def load(cls, path: Path) -> Towns:
        source = path.name
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise TownsError(f"{source}: larger than {MAX_FILE_BYTES // 2**20} MB")
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise TownsError(f"{source}: cannot read it ({exc.strerror})") from None
        except (ValueError, RecursionError) as exc:
            raise TownsError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_geojson(data, source)

    @classmethod
    def from_geojson(cls, data: object, source: str) -> Towns:
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise TownsError(f"{source}: expected a GeoJSON FeatureCollection")
        features = data.get("features")
        if not isinstance(features, list):
            raise TownsError(f"{source}: the FeatureCollection has no features list")
        if len(features) > MAX_FEATURES:
            raise TownsError(f"{source}: {len(features)} features; at most {MAX_FEATURES}")
        levels: dict[str, tuple[list[str], list[Polygon | MultiPolygon]]] = {
            level: ([], []) for level in LEVELS
        }
        total = 0
        for index, feature in enumerate(features):
            level, name, geometry, points = _read_feature(feature, index, source)
            where = f"{source}: feature {index} ({name})"
            total += points
            if total > MAX_POINTS:
                raise TownsError(f"{where}: the file has over {MAX_POINTS} points in all")
            names, shapes = levels[level]
            if name in names:
                raise TownsError(f"{where}: the {level} name is given twice")
            polygon = shape(geometry)
            assert isinstance(polygon, Polygon | MultiPolygon)
            if not polygon.is_valid:
                raise TownsError(f"{where}: invalid polygon ({explain_validity(polygon)})")
            names.append(name)
            shapes.append(polygon)
        if not levels["town"][0]:
            raise TownsError(f"{source}: no town polygons (features with level town)")
        built = {level: _Level(*levels[level]) for level in LEVELS if levels[level][0]}
        for built_level in built.values():
            _refuse_overlaps(built_level, source)
        return cls(built["town"], built.get("grid"))

    def locate(self, lat: float, lon: float) -> Zone:
        if self._towns is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return Zone(None, None)
        point = shapely.Point(lon, lat)
        grid = self._grids.locate(point) if self._grids else None
        return Zone(self._towns.locate(point), grid)

    def outlines(self) -> list[tuple[str, list[list[tuple[float, float]]]]]:
        """Each town's name and exterior rings as (lat, lon), for drawing a map."""
        if self._towns is None:
            return []
        drawn = []
        for name, polygon in zip(self._towns.names, self._towns.shapes, strict=True):
            parts = polygon.geoms if isinstance(polygon, MultiPolygon) else [polygon]
            rings = [[(lat, lon) for lon, lat in part.exterior.coords] for part in parts]
            drawn.append((name, rings))
        return drawn


def _read_feature(feature: object, index: int, source: str) -> tuple[str, str, Any, int]:
    """(level, name, geometry, points) of one feature, checked before shapely sees it."""
    where = f"{source}: feature {index}"
    if not isinstance(feature, dict):
        raise TownsError(f"{where}: not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise TownsError(f"{where}: needs a name (properties.name)")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise TownsError(f"{where}: the name is over {MAX_NAME_CHARS} characters")
    where = f"{where} ({name})"
    level = properties.get("level", "town")
    if level not in LEVELS:
        raise TownsError(f"{where}: level must be town or grid, not {level!r}")
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geometry.get("type") if isinstance(geometry, dict) else "no geometry"
        raise TownsError(f"{where}: expected a Polygon or MultiPolygon, got {kind}")
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    points = _count_points(polygons, where)
    return level, name, geometry, points


def _count_points(polygons: object, where: str) -> int:
    """The points of a list of polygons (lists of rings of [lon, lat]), each checked."""
    if not isinstance(polygons, list) or not polygons:
        raise TownsError(f"{where}: the coordinates are not a list of rings")
    points = 0
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise TownsError(f"{where}: the coordinates are not a list of rings")
        for ring in polygon:
            if not isinstance(ring, list) or len(ring) < 4:
                raise TownsError(f"{where}: a ring needs at least 4 points")
            points += len(ring)
            if points > MAX_POINTS_PER_FEATURE:
                raise TownsError(
                    f"{where}: polygon has over {MAX_POINTS_PER_FEATURE} points; "
                    "simplify it (e.g. mapshaper -simplify)"
                )
            for position in ring:
                if not (
                    isinstance(position, list)
                    and len(position) >= 2
                    and all(
                        isinstance(v, int | float) and not isinstance(v, bool) for v in position[:2]
                    )
                    and -180 <= position[0] <= 180
                    and -90 <= position[1] <= 90
                ):
                    raise TownsError(
                        f"{where}: a point is not [longitude, latitude] in range: {position!r:.60}"
                    )
    return points


def _refuse_overlaps(level: _Level, source: str) -> None:
    for index, polygon in enumerate(level.shapes):
        for other in level.tree.query(polygon, predicate="intersects"):
            if other <= index:
                continue
            neighbour = level.shapes[other]
            shared = polygon.intersection(neighbour).area
            if shared > OVERLAP_SHARE * min(polygon.area, neighbour.area):
                raise TownsError(
                    f"{source}: {level.names[index]} and {level.names[other]} overlap "
                    f"({shared / min(polygon.area, neighbour.area):.0%} of the smaller one)"
                )
