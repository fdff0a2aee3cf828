"""Geographic helpers: distances, SQL prefilter boxes and the configured service area.

Coordinates are WGS 84 decimal degrees, always in ``(lat, lon)`` order. Longitudes are
treated linearly: shapes that cross the antimeridian are not supported (a service area
for delivery riders never needs them), and search boxes that would cross it widen to the
full longitude range instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

EARTH_RADIUS_M = 6_371_008.8
"""Mean earth radius (IUGG), metres."""

EDGE_TOLERANCE_DEG = 1e-9
"""Points this close (in degrees, ~0.1 mm) to a polygon edge count as on the edge."""

_BOX_KEYS = "[min_lat, min_lon, max_lat, max_lon]"
_BOX_PAD_DEG = 1e-9


def valid_coordinates(lat: float, lon: float) -> bool:
    """Return whether ``lat``/``lon`` are finite and within [-90, 90] / [-180, 180]."""
    return (
        math.isfinite(lat)
        and math.isfinite(lon)
        and -90.0 <= lat <= 90.0
        and -180.0 <= lon <= 180.0
    )


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (spherical earth)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class BoundingBox:
    """An inclusive latitude/longitude rectangle; validated on construction."""

    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float

    def __post_init__(self) -> None:
        if not (
            valid_coordinates(self.min_lat, self.min_lon)
            and valid_coordinates(self.max_lat, self.max_lon)
        ):
            raise ValueError(
                f"box {self._as_list()} is out of range: latitudes must be within "
                "[-90, 90] and longitudes within [-180, 180]"
            )
        if self.min_lat > self.max_lat or self.min_lon > self.max_lon:
            raise ValueError(
                f"box {self._as_list()} must be ordered as {_BOX_KEYS} with min <= max"
            )

    def _as_list(self) -> list[float]:
        return [self.min_lat, self.min_lon, self.max_lat, self.max_lon]

    def contains(self, lat: float, lon: float) -> bool:
        """Return whether the point lies inside the box or on its border."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


def bounding_box(lat: float, lon: float, radius_m: float) -> BoundingBox:
    """Smallest lat/lon box enclosing the circle of ``radius_m`` around a point.

    Meant as an indexed SQL prefilter; refine the candidates with :func:`haversine_m`.
    The longitude half-width is the exact tangent ``asin(sin(r) / cos(lat))``. If the
    circle reaches a pole or crosses the antimeridian the box spans all longitudes, and
    latitudes are clamped to [-90, 90]. Every side is padded by ``_BOX_PAD_DEG`` so
    rounding never drops a point lying exactly on the circle.
    """
    if not valid_coordinates(lat, lon):
        raise ValueError(f"invalid centre ({lat}, {lon})")
    if not (math.isfinite(radius_m) and radius_m >= 0):
        raise ValueError(f"radius must be a finite number >= 0, got {radius_m}")
    angular = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angular) + _BOX_PAD_DEG
    min_lat, max_lat = lat - dlat, lat + dlat
    if min_lat <= -90.0 or max_lat >= 90.0:
        return BoundingBox(max(min_lat, -90.0), -180.0, min(max_lat, 90.0), 180.0)
    dlon = math.degrees(math.asin(min(1.0, math.sin(angular) / math.cos(math.radians(lat)))))
    dlon += _BOX_PAD_DEG
    min_lon, max_lon = lon - dlon, lon + dlon
    if min_lon < -180.0 or max_lon > 180.0:
        min_lon, max_lon = -180.0, 180.0
    return BoundingBox(min_lat, min_lon, max_lat, max_lon)


Polygon = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ServiceArea:
    """Where reports are accepted: everywhere (``shape`` None), a box or a polygon.

    Build it with :meth:`everywhere`, :meth:`box`, :meth:`polygon` or
    :meth:`from_config`; polygon vertices are ``(lat, lon)`` pairs.
    """

    shape: BoundingBox | Polygon | None = None
    name_zh: str = ""  # what riders are told it is called (惠水县); empty: unnamed
    name_en: str = ""

    def name(self, language: str) -> str:
        """The area's name in `language` (the Chinese one when no English one is given)."""
        return (self.name_en if language == "en" else "") or self.name_zh

    def __post_init__(self) -> None:
        if isinstance(self.shape, tuple):
            _validate_polygon(self.shape)

    @classmethod
    def everywhere(cls) -> ServiceArea:
        """An area containing every valid coordinate."""
        return cls()

    @classmethod
    def box(cls, min_lat: float, min_lon: float, max_lat: float, max_lon: float) -> ServiceArea:
        """A rectangle, borders included; raises ValueError if out of range or unordered."""
        return cls(BoundingBox(min_lat, min_lon, max_lat, max_lon))

    @classmethod
    def polygon(cls, points: Sequence[tuple[float, float]]) -> ServiceArea:
        """A simple polygon of at least 3 ``(lat, lon)`` vertices; raises ValueError."""
        return cls(tuple((float(lat), float(lon)) for lat, lon in points))

    @classmethod
    def from_config(cls, table: Mapping[str, object] | None) -> ServiceArea:
        """Parse a TOML table: empty/None, ``{box = [...]}`` or ``{polygon = [[lat, lon], ...]}``.

        Raises ValueError with a one-line message naming the problem.
        """
        if table is None:
            return cls.everywhere()
        if not isinstance(table, Mapping):
            raise ValueError(f"expected a table with 'box' or 'polygon', got {table!r}")
        names = {key: table[key] for key in ("name", "name_en") if key in table}
        if not all(isinstance(value, str) for value in names.values()):
            raise ValueError("name and name_en must be text")
        table = {key: value for key, value in table.items() if key not in names}
        area = cls._shape(table)
        return replace(
            area,
            name_zh=str(names.get("name", "")).strip(),
            name_en=str(names.get("name_en", "")).strip(),
        )

    @classmethod
    def _shape(cls, table: Mapping[str, object]) -> ServiceArea:
        if not table:
            return cls.everywhere()
        unknown = sorted(set(table) - {"box", "polygon"})
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown}; expected exactly one of 'box' or 'polygon'"
            )
        if len(table) != 1:
            raise ValueError("give either 'box' or 'polygon', not both")
        if "box" in table:
            raw_box = table["box"]
            if not (isinstance(raw_box, list | tuple) and len(raw_box) == 4):
                raise ValueError(f"box must be a list of 4 numbers {_BOX_KEYS}, got {raw_box!r}")
            min_lat, min_lon, max_lat, max_lon = (_number(v, "box") for v in raw_box)
            return cls.box(min_lat, min_lon, max_lat, max_lon)
        raw_polygon = table["polygon"]
        if not isinstance(raw_polygon, list | tuple):
            raise ValueError(f"polygon must be a list of [lat, lon] pairs, got {raw_polygon!r}")
        points: list[tuple[float, float]] = []
        for index, raw_point in enumerate(raw_polygon):
            if not (isinstance(raw_point, list | tuple) and len(raw_point) == 2):
                raise ValueError(
                    f"polygon point {index} must be a [lat, lon] pair, got {raw_point!r}"
                )
            where = f"polygon point {index}"
            points.append((_number(raw_point[0], where), _number(raw_point[1], where)))
        return cls.polygon(points)

    def outline(self) -> list[tuple[float, float]] | None:
        """The area's outline as closed ``(lat, lon)`` points; None for everywhere."""
        shape = self.shape
        if shape is None:
            return None
        if isinstance(shape, BoundingBox):
            points = [
                (shape.min_lat, shape.min_lon),
                (shape.min_lat, shape.max_lon),
                (shape.max_lat, shape.max_lon),
                (shape.max_lat, shape.min_lon),
            ]
        else:
            points = list(shape)
        return [*points, points[0]]

    def centre(self) -> tuple[float, float] | None:
        """A point inside the area near its middle, ``(lat, lon)``; None for everywhere."""
        if self.shape is None:
            return None
        if isinstance(self.shape, BoundingBox):
            box = self.shape
            return (box.min_lat + box.max_lat) / 2, (box.min_lon + box.max_lon) / 2
        lat = sum(point[0] for point in self.shape) / len(self.shape)
        lon = sum(point[1] for point in self.shape) / len(self.shape)
        return (lat, lon) if self.contains(lat, lon) else self.shape[0]

    def contains(self, lat: float, lon: float) -> bool:
        """Return whether a valid point lies in the area; borders count as inside."""
        if not valid_coordinates(lat, lon):
            return False
        if self.shape is None:
            return True
        if isinstance(self.shape, BoundingBox):
            return self.shape.contains(lat, lon)
        return _in_polygon(self.shape, lat, lon)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _validate_polygon(vertices: Polygon) -> None:
    if len(vertices) < 3:
        raise ValueError(f"polygon needs at least 3 [lat, lon] points, got {len(vertices)}")
    for index, (lat, lon) in enumerate(vertices):
        if not valid_coordinates(lat, lon):
            raise ValueError(
                f"polygon point {index} ({lat}, {lon}) is out of range: latitude must be "
                "within [-90, 90] and longitude within [-180, 180]"
            )
    doubled_area = sum(
        lat1 * lon2 - lat2 * lon1
        for (lat1, lon1), (lat2, lon2) in zip(vertices, vertices[1:] + vertices[:1], strict=True)
    )
    if doubled_area == 0:
        raise ValueError("polygon encloses no area (are its points all on one line?)")


def _in_polygon(vertices: Polygon, lat: float, lon: float) -> bool:
    """Ray casting (even-odd rule) along +lon; points on an edge are inside."""
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        if _on_segment(lat, lon, lat1, lon1, lat2, lon2):
            return True
        if (lat1 > lat) != (lat2 > lat):
            crossing_lon = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing_lon:
                inside = not inside
    return inside


def _on_segment(lat: float, lon: float, lat1: float, lon1: float, lat2: float, lon2: float) -> bool:
    eps = EDGE_TOLERANCE_DEG
    if not (
        min(lat1, lat2) - eps <= lat <= max(lat1, lat2) + eps
        and min(lon1, lon2) - eps <= lon <= max(lon1, lon2) + eps
    ):
        return False
    cross = (lat2 - lat1) * (lon - lon1) - (lon2 - lon1) * (lat - lat1)
    return abs(cross) <= eps * math.hypot(lat2 - lat1, lon2 - lon1)


# --- GCJ-02 ("Mars coordinates") used by Amap, Tencent and other Chinese map apps ----------

_GCJ_A = 6378245.0
"""Semi-major axis of the Krasovsky 1940 ellipsoid that the GCJ-02 offset formula uses."""
_GCJ_EE = 0.00669342162296594323
"""Its first eccentricity squared."""
_GCJ_INVERSE_TOLERANCE_DEG = 1e-9
_GCJ_INVERSE_MAX_STEPS = 30


def outside_china(lat: float, lon: float) -> bool:
    """Whether the point lies outside the rough box where GCJ-02 applies (no offset there)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_offset(lat: float, lon: float) -> tuple[float, float]:
    """The (dlat, dlon) in degrees that GCJ-02 adds to a WGS-84 point."""
    x, y = lon - 105.0, lat - 35.0
    common = 20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (common + 20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (common + 20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad = math.radians(lat)
    magic = 1 - _GCJ_EE * math.sin(rad) ** 2
    dlat = (dlat * 180.0) / ((_GCJ_A * (1 - _GCJ_EE)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The GCJ-02 coordinates Chinese map apps show for a WGS-84 point."""
    if outside_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj_offset(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 point a GCJ-02 coordinate stands for, by fixed-point iteration.

    The forward offset varies slowly (tens of metres per kilometre), so subtracting the offset
    of the current guess converges to well under a millimetre in a few steps.
    """
    if outside_china(lat, lon):
        return lat, lon
    guess_lat, guess_lon = lat, lon
    for _ in range(_GCJ_INVERSE_MAX_STEPS):
        shown_lat, shown_lon = wgs84_to_gcj02(guess_lat, guess_lon)
        error_lat, error_lon = shown_lat - lat, shown_lon - lon
        guess_lat, guess_lon = guess_lat - error_lat, guess_lon - error_lon
        if max(abs(error_lat), abs(error_lon)) < _GCJ_INVERSE_TOLERANCE_DEG:
            break
    return guess_lat, guess_lon


def to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """A WGS-84 point (what Telegram's location gives) in GCJ-02, the shifted datum Chinese
    maps such as Amap draw in by law; without it a point lands a few hundred metres off.
    Outside mainland China's rough box the two are the same. The published conversion
    (the one Amap's and Google's China tiles agree with to about a metre)."""
    if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
        return lat, lon
    x, y = lon - 105.0, lat - 35.0
    d_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )  # fmt: skip
    a, ee = 6378245.0, 0.00669342162296594323  # Krasovsky 1940
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    root = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((a * (1 - ee)) / (magic * root) * math.pi)
    d_lon = (d_lon * 180.0) / (a / root * math.cos(rad) * math.pi)
    return lat + d_lat, lon + d_lon
