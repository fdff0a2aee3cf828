"""Distances, search boxes and the service area."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.geo import (
    EARTH_RADIUS_M,
    EDGE_TOLERANCE_DEG,
    BoundingBox,
    ServiceArea,
    bounding_box,
    haversine_m,
    valid_coordinates,
)

TIANANMEN = (39.9055, 116.3976)
PEOPLES_SQUARE = (31.2304, 121.4737)


def offset(lat: float, lon: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lon) along ``bearing_deg`` (great circle)."""
    phi, lam, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = distance_m / EARTH_RADIUS_M
    phi2 = math.asin(
        math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(theta)
    )
    lam2 = lam + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi),
        math.cos(delta) - math.sin(phi) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lam2) + 540) % 360 - 180


# --- haversine -------------------------------------------------------------------------


def test_beijing_to_shanghai() -> None:
    distance = haversine_m(*TIANANMEN, *PEOPLES_SQUARE)
    assert 1_067_000 < distance < 1_068_000
    assert haversine_m(*PEOPLES_SQUARE, *TIANANMEN) == pytest.approx(distance)


def test_short_offsets() -> None:
    lat, lon = PEOPLES_SQUARE
    assert haversine_m(lat, lon, lat, lon) == 0
    north = lat + math.degrees(500 / EARTH_RADIUS_M)
    assert haversine_m(lat, lon, north, lon) == pytest.approx(500, abs=1e-6)
    east = lon + math.degrees(500 / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    assert haversine_m(lat, lon, lat, east) == pytest.approx(500, rel=1e-6)
    for bearing in (0, 45, 135, 200, 300):
        assert haversine_m(lat, lon, *offset(lat, lon, bearing, 500)) == pytest.approx(500)


def test_antipodes_and_quarter_circumference() -> None:
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(90, 0, 0, 77) == pytest.approx(math.pi / 2 * EARTH_RADIUS_M)


def test_valid_coordinates() -> None:
    assert valid_coordinates(90, 180)
    assert valid_coordinates(-90, -180)
    assert not valid_coordinates(90.1, 0)
    assert not valid_coordinates(0, -180.5)
    assert not valid_coordinates(math.nan, 0)
    assert not valid_coordinates(0, math.inf)


# --- bounding box ----------------------------------------------------------------------


@given(
    lat=st.floats(-89.99, 89.99),
    lon=st.floats(-180, 180),
    radius=st.floats(1, 200_000),
    bearing=st.floats(0, 360),
    fraction=st.floats(0, 1),
)
def test_box_contains_every_point_of_the_circle(
    lat: float, lon: float, radius: float, bearing: float, fraction: float
) -> None:
    box = bounding_box(lat, lon, radius)
    point = offset(lat, lon, bearing, radius * fraction)
    assert haversine_m(lat, lon, *point) <= radius * (1 + 1e-9) + 1e-6
    assert box.contains(*point)


def test_box_is_tight_at_the_equator_and_widens_with_latitude() -> None:
    box = bounding_box(0, 0, 1000)
    assert box.max_lat == pytest.approx(math.degrees(1000 / EARTH_RADIUS_M))
    assert box.max_lon == pytest.approx(box.max_lat)
    north = bounding_box(60, 0, 1000)
    assert north.max_lon == pytest.approx(2 * (north.max_lat - 60), rel=1e-3)


def test_box_near_a_pole_spans_all_longitudes() -> None:
    box = bounding_box(89.999, 10, 5_000)
    assert (box.max_lat, box.min_lon, box.max_lon) == (90, -180, 180)
    assert box.min_lat == pytest.approx(89.999 - math.degrees(5_000 / EARTH_RADIUS_M))
    box = bounding_box(-90, 0, 1)
    assert (box.min_lat, box.min_lon, box.max_lon) == (-90, -180, 180)


def test_box_across_the_antimeridian_spans_all_longitudes() -> None:
    box = bounding_box(0, 179.999, 1_000)
    assert (box.min_lon, box.max_lon) == (-180, 180)


def test_box_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="radius"):
        bounding_box(0, 0, -1)
    with pytest.raises(ValueError, match="radius"):
        bounding_box(0, 0, math.nan)
    with pytest.raises(ValueError, match="centre"):
        bounding_box(91, 0, 10)


# --- service area ----------------------------------------------------------------------

# An L shape (concave): the square 0..10 x 0..10 minus its top-right quarter 5..10 x 5..10.
L_SHAPE = [(0.0, 0.0), (0.0, 10.0), (5.0, 10.0), (5.0, 5.0), (10.0, 5.0), (10.0, 0.0)]


def test_everywhere() -> None:
    area = ServiceArea.everywhere()
    assert area.contains(0, 0)
    assert area.contains(-90, 180)
    assert not area.contains(math.nan, 0)
    assert ServiceArea.from_config(None) == area
    assert ServiceArea.from_config({}) == area


def test_box_area() -> None:
    area = ServiceArea.box(30.7, 121.0, 31.9, 122.2)
    assert area.contains(*PEOPLES_SQUARE)
    assert area.contains(30.7, 121.0)
    assert area.contains(31.9, 121.5)
    assert not area.contains(*TIANANMEN)
    assert not area.contains(31.2, 122.3)


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((2.0, 2.0), True),
        ((2.0, 8.0), True),
        ((8.0, 2.0), True),
        ((8.0, 8.0), False),  # the notch
        ((5.0, 7.0), True),  # on the inner edge
        ((7.0, 5.0), True),  # on the other inner edge
        ((5.0, 5.0), True),  # the reflex vertex
        ((0.0, 3.0), True),  # outer edge
        ((10.0, 0.0), True),  # corner
        ((5.0, 2.0), True),  # level with a horizontal edge, inside
        ((5.0, 12.0), False),  # level with a horizontal edge, outside
        ((-0.1, 3.0), False),
        ((11.0, 3.0), False),
        ((3.0, -1.0), False),
    ],
)
def test_concave_polygon(point: tuple[float, float], inside: bool) -> None:
    assert ServiceArea.polygon(L_SHAPE).contains(*point) is inside


@given(lat=st.floats(-1, 12), lon=st.floats(-1, 12))
def test_rectangular_polygon_agrees_with_box(lat: float, lon: float) -> None:
    near_border = min(abs(lat), abs(lat - 10), abs(lon), abs(lon - 5)) <= EDGE_TOLERANCE_DEG
    assume(not near_border)  # the polygon's edge tolerance is the only allowed difference
    box = ServiceArea.box(0, 0, 10, 5)
    polygon = ServiceArea.polygon([(0, 0), (10, 0), (10, 5), (0, 5)])
    assert polygon.contains(lat, lon) is box.contains(lat, lon)


def test_polygon_diagonal_edge_points_are_inside() -> None:
    triangle = ServiceArea.polygon([(31.0, 121.0), (31.3, 121.7), (31.6, 121.1)])
    for t in (0.1, 0.37, 0.5, 0.9):
        assert triangle.contains(31.0 + 0.3 * t, 121.0 + 0.7 * t)
    assert not triangle.contains(31.0 + 0.3 * 0.5 - 0.001, 121.0 + 0.7 * 0.5 + 0.001)


def test_polygon_validation() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        ServiceArea.polygon([(0, 0), (1, 1)])
    with pytest.raises(ValueError, match=r"point 1 \(95.0, 0.0\) is out of range"):
        ServiceArea.polygon([(0, 0), (95, 0), (1, 1)])
    with pytest.raises(ValueError, match="no area"):
        ServiceArea.polygon([(0, 0), (1, 1), (2, 2)])


def test_box_validation() -> None:
    with pytest.raises(ValueError, match="min <= max"):
        ServiceArea.box(31.9, 121.0, 30.7, 122.2)
    with pytest.raises(ValueError, match="out of range"):
        ServiceArea.box(0, 0, 1, 190)
    with pytest.raises(ValueError, match="out of range"):
        BoundingBox(math.nan, 0, 1, 1)


def test_from_config_shapes() -> None:
    box = ServiceArea.from_config({"box": [30.7, 121, 31.9, 122.2]})
    assert box == ServiceArea.box(30.7, 121.0, 31.9, 122.2)
    polygon = ServiceArea.from_config({"polygon": [list(p) for p in L_SHAPE]})
    assert polygon == ServiceArea.polygon(L_SHAPE)
    assert not polygon.contains(8, 8)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"circle": [0, 0, 1]}, r"unknown key\(s\) \['circle'\]"),
        ({"box": [0, 0, 1, 1], "polygon": L_SHAPE}, "not both"),
        ({"box": [0, 0, 1]}, "box must be a list of 4 numbers"),
        ({"box": "0,0,1,1"}, "box must be a list of 4 numbers"),
        ({"box": [0, 0, "1", 1]}, "box: expected a number, got '1'"),
        ({"box": [0, 0, True, 1]}, "box: expected a number, got True"),
        ({"box": [2, 0, 1, 1]}, "min <= max"),
        ({"polygon": "nope"}, "polygon must be a list of"),
        ({"polygon": [[0, 0], [1, 1]]}, "at least 3"),
        ({"polygon": [[0, 0], [1], [1, 1]]}, "polygon point 1 must be a"),
        ({"polygon": [[0, 0], [1, "x"], [1, 1]]}, "polygon point 1: expected a number"),
        ({"polygon": [[0, 0], [1, 200], [1, 1]]}, "point 1 .* out of range"),
        ("box", "expected a table"),
    ],
)
def test_from_config_errors(table: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        ServiceArea.from_config(table)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
