"""The county's towns file: which town and grid a point lies in, and one clear line for a
file that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.towns import Towns, TownsError, Zone


def square(lon: float, lat: float, size: float = 0.1) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def feature(
    name: str, rings: list[Any], level: str = "town", kind: str = "Polygon"
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"name": name, "level": level},
        "geometry": {"type": kind, "coordinates": rings},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


# 城关镇 west of 106.7, 好花红镇 east of it; a grid inside 城关镇; a hole (a lake) in 好花红镇
COUNTY = collection(
    feature("城关镇", [square(106.6, 26.1)]),
    feature("好花红镇", [square(106.7, 26.1), square(106.75, 26.15, 0.01)]),
    feature("城关一网格", [square(106.6, 26.1, 0.05)], level="grid"),
)


def test_points_fall_in_their_town_and_grid() -> None:
    towns = Towns.from_geojson(COUNTY, "towns.geojson")
    assert towns.names == ("城关镇", "好花红镇")
    assert towns.grids == ("城关一网格",)
    assert towns.locate(26.12, 106.62) == Zone("城关镇", "城关一网格")
    assert towns.locate(26.18, 106.68) == Zone("城关镇", None)
    assert towns.locate(26.12, 106.72) == Zone("好花红镇", None)
    assert towns.locate(26.15, 106.6 + 0.1) == Zone("城关镇", None)  # on the border: the first
    assert towns.locate(26.155, 106.755) == Zone(None, None)  # the lake
    assert towns.locate(27.0, 106.65) == Zone(None, None)  # outside every town
    assert towns.locate(999, 106.65) == Zone(None, None)
    assert [name for name, _ in towns.outlines()] == ["城关镇", "好花红镇"]
    assert towns.outlines()[0][1][0][0] == (26.1, 106.6)  # (lat, lon)


def test_multipolygon_and_no_file() -> None:
    towns = Towns.from_geojson(
        collection(feature("两块镇", [[square(1, 1)], [square(3, 3)]], kind="MultiPolygon")), "t"
    )
    assert towns.locate(3.05, 3.05).town == "两块镇"
    assert not Towns.none()
    assert Towns.none().locate(3.05, 3.05) == Zone(None, None)
    assert Towns.from_geojson(COUNTY, "a") == Towns.from_geojson(COUNTY, "b") != Towns.none()


def test_a_sliver_of_overlap_is_fine_but_overlapping_towns_are_not() -> None:
    sliver = collection(feature("甲镇", [square(0, 0, 1)]), feature("乙镇", [square(0.999, 0, 1)]))
    assert Towns.from_geojson(sliver, "t").names == ("甲镇", "乙镇")
    overlapping = collection(
        feature("甲镇", [square(0, 0, 1)]), feature("乙镇", [square(0.5, 0, 1)])
    )
    with pytest.raises(TownsError, match="甲镇 and 乙镇 overlap"):
        Towns.from_geojson(overlapping, "t")


BIG_RING = [[106 + i * 1e-6, 26.0] for i in range(100_000)]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"type": "Feature"}, "expected a GeoJSON FeatureCollection"),
        (collection(), "no town polygons"),
        (collection(feature("网格", [square(0, 0)], level="grid")), "no town polygons"),
        (
            collection({"type": "Feature", "properties": {"name": "甲"}}),
            "feature 0 \\(甲\\): expected a Polygon",
        ),
        (
            collection(feature("点", [106.0, 26.0], kind="Point")),
            "feature 0 \\(点\\): expected a Polygon or MultiPolygon, got Point",
        ),
        (collection(feature("", [square(0, 0)])), "feature 0: needs a name"),
        (collection(feature("镇" * 41, [square(0, 0)])), "over 40 characters"),
        (
            collection(feature("甲", [square(0, 0)]), feature("甲", [square(5, 5)])),
            "feature 1 \\(甲\\): the town name is given twice",
        ),
        (collection(feature("甲", [square(0, 0)], level="county")), "level must be town or grid"),
        (collection(feature("甲", [[[0, 0], [1, 0], [0, 0]]])), "a ring needs at least 4 points"),
        (
            collection(feature("甲", [[[0, 0], [1, 0], [1, 95], [0, 0]]])),
            "not \\[longitude, latitude\\] in range",
        ),
        (
            collection(feature("甲", [[[0, 0], ["1", 0], [1, 1], [0, 0]]])),
            "not \\[longitude, latitude\\]",
        ),
        (
            collection(feature("蝴蝶", [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]])),
            "feature 0 \\(蝴蝶\\): invalid polygon \\(Self-intersection",
        ),
        (
            collection(feature("大镇", [[*BIG_RING, BIG_RING[0]]])),
            "feature 0 \\(大镇\\): polygon has over 20000 points",
        ),
    ],
)
def test_a_bad_file_gets_one_line_naming_the_feature(data: object, problem: str) -> None:
    with pytest.raises(TownsError, match=problem) as raised:
        Towns.from_geojson(data, "towns.geojson")
    assert str(raised.value).startswith("towns.geojson")
    assert "\n" not in str(raised.value)


def test_files(tmp_path: Path) -> None:
    path = tmp_path / "towns.geojson"
    with pytest.raises(TownsError, match=r"towns\.geojson: cannot read it"):
        Towns.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(TownsError, match="not valid JSON"):
        Towns.load(path)
    path.write_text(json.dumps(COUNTY, ensure_ascii=False), encoding="utf-8")
    assert Towns.load(path).locate(26.12, 106.72).town == "好花红镇"
