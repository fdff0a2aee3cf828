"""Button data: one codec, 64 bytes checked when built, forged data read as nothing."""

from __future__ import annotations

import pytest

from handlers.callbacks import MAX_BYTES, Verb, parse, pattern

SAMPLE = Verb("t_sample")
OTHER = Verb("t_other")


def test_data_round_trips() -> None:
    pressed = parse(SAMPLE.data(42, "rr:blurry"))
    assert pressed is not None
    assert pressed.verb is SAMPLE
    assert pressed.item == 42
    assert pressed.argument == "rr:blurry"
    assert parse(OTHER.data(-1)) == type(pressed)(OTHER, -1, "")
    assert parse(SAMPLE.data(7, 5000)).number() == 5000  # type: ignore[union-attr]
    assert parse(SAMPLE.data(7, "³")).number() is None  # type: ignore[union-attr]


def test_data_over_64_bytes_fails_when_built() -> None:
    room = MAX_BYTES - len(SAMPLE.data(1, "")) - 1
    assert len(SAMPLE.data(1, "x" * room).encode()) == MAX_BYTES
    with pytest.raises(ValueError, match="64 bytes"):
        SAMPLE.data(1, "x" * (room + 1))
    with pytest.raises(ValueError, match="64 bytes"):
        SAMPLE.data(1, "字" * 20)  # 60 bytes of UTF-8, over with the prefix


@pytest.mark.parametrize(
    "forged",
    [
        None,
        "",
        "t_sample",
        "t_sample:",
        "t_sample:x",
        "nope:1",
        "T_SAMPLE:1",
        "t_sample:1" + "9" * 30,
    ],
)
def test_forged_or_stale_data_parses_to_nothing(forged: str | None) -> None:
    assert parse(forged) is None


def test_verbs_are_unique_and_well_formed() -> None:
    with pytest.raises(ValueError, match="twice"):
        Verb("t_sample")
    with pytest.raises(ValueError, match="a-z"):
        Verb("Bad-Verb")


def test_pattern_matches_its_verbs_only() -> None:
    matcher = pattern(SAMPLE)
    assert matcher.match(SAMPLE.data(3))
    assert not matcher.match(OTHER.data(3))
    assert not matcher.match("t_sample_more:3")
