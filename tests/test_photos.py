"""Photo validation, metadata stripping, EXIF parsing and lookalike hashes."""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageFile
from PIL.TiffImagePlugin import IFDRational

from services.photos import (
    LOOKALIKE_DISTANCE,
    Evidence,
    PhotoProblem,
    PhotoRejected,
    dhash,
    gps_from_exif,
    hamming,
    inspect_photo,
    is_stale,
    taken_at_from_exif,
)
from services.reporting import EVIDENCE_MAX_SIDE
from tests import images

SHANGHAI = ZoneInfo("Asia/Shanghai")


def inspect(data: bytes, **limits: int) -> Evidence:
    return inspect_photo(data, local_tz=SHANGHAI, **limits)


def rejection(data: bytes, **limits: int) -> PhotoProblem:
    with pytest.raises(PhotoRejected) as info:
        inspect(data, **limits)
    return info.value.reason


def reopen(evidence: Evidence) -> Image.Image:
    image = Image.open(io.BytesIO(evidence.jpeg))
    image.load()
    return image


# --- accepted images -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fmt"),
    [(images.jpeg(), "JPEG"), (images.png(), "PNG"), (images.webp(), "WEBP")],
)
def test_accepts_allowed_formats(data: bytes, fmt: str) -> None:
    evidence = inspect(data)
    assert evidence.source_format == fmt
    assert (evidence.width, evidence.height) == (320, 240)
    assert reopen(evidence).format == "JPEG"
    assert evidence.sha256 == hashlib.sha256(data).hexdigest()
    assert evidence.taken_at is None
    assert evidence.gps is None


def test_output_has_no_metadata() -> None:
    evidence = inspect(images.jpeg_with_metadata())
    assert evidence.gps == pytest.approx((39.9075, 116.391583), abs=1e-6)
    assert evidence.taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=8)))
    out = reopen(evidence)
    assert not out.getexif()
    assert out.mode == "RGB"
    for key in ("exif", "comment", "icc_profile", "xmp"):
        assert key not in out.info
    for marker in (b"Exif", b"Mi 9", b"not really a profile", b"xmpmeta"):
        assert marker not in evidence.jpeg


def test_orientation_is_applied() -> None:
    data, upright = images.orientation6_jpeg()
    assert Image.open(io.BytesIO(data)).size == (200, 120)
    evidence = inspect(data)
    assert (evidence.width, evidence.height) == (120, 200)
    assert hamming(evidence.phash, dhash(upright)) <= LOOKALIKE_DISTANCE
    assert not reopen(evidence).getexif()


@pytest.mark.parametrize("max_side", [400, 100])
@pytest.mark.parametrize("encode", [images.jpeg, images.png])
def test_long_side_is_capped(encode: Callable[[Image.Image], bytes], max_side: int) -> None:
    evidence = inspect(encode(images.picture(1, (1000, 500))), max_side=max_side)
    assert (evidence.width, evidence.height) == (max_side, max_side // 2)
    assert inspect(encode(images.picture(1, (500, 1000))), max_side=1000).height == 1000


def test_transparency_is_flattened_onto_white() -> None:
    evidence = inspect(images.png(Image.new("RGBA", (10, 10), (0, 0, 0, 0))))
    pixel = reopen(evidence).convert("L").getpixel((5, 5))
    assert isinstance(pixel, int)
    assert pixel > 250


def test_mpo_is_read_as_its_primary_jpeg() -> None:
    evidence = inspect(images.mpo())
    assert evidence.source_format == "JPEG"
    assert (evidence.width, evidence.height) == (320, 240)


# --- rejections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (images.text_file(), PhotoProblem.NOT_IMAGE),
        (b"", PhotoProblem.NOT_IMAGE),
        (images.gif(), PhotoProblem.UNSUPPORTED_FORMAT),
        (images.bmp(), PhotoProblem.UNSUPPORTED_FORMAT),
        (images.heic_header(), PhotoProblem.UNSUPPORTED_FORMAT),
        (images.animated("WEBP"), PhotoProblem.UNSUPPORTED_FORMAT),
        (images.animated("PNG"), PhotoProblem.UNSUPPORTED_FORMAT),
        (images.truncated_jpeg(), PhotoProblem.CORRUPT),
        (images.png_with_bad_crc(), PhotoProblem.CORRUPT),
    ],
    ids=["text", "empty", "gif", "bmp", "heic", "webp-anim", "apng", "truncated", "bad-crc"],
)
def test_rejects(data: bytes, reason: PhotoProblem) -> None:
    assert rejection(data) is reason


def test_rejects_too_many_bytes_before_parsing() -> None:
    data = images.text_file()
    assert rejection(data, max_bytes=len(data) - 1) is PhotoProblem.TOO_LARGE
    assert rejection(data, max_bytes=len(data)) is PhotoProblem.NOT_IMAGE


def test_rejects_decompression_bomb_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = images.png_bomb(20_000, 20_000)
    assert len(bomb) < 100_000  # 400 million pixels in a few kilobytes

    def refuse_to_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)
    monkeypatch.setattr(ImageFile.ImageFile, "verify", refuse_to_decode)
    assert rejection(bomb) is PhotoProblem.TOO_MANY_PIXELS


def test_rejects_over_max_pixels_below_pillow_limit() -> None:
    assert rejection(images.png_header_only(8_000, 8_000)) is PhotoProblem.TOO_MANY_PIXELS
    assert rejection(images.jpeg(), max_pixels=320 * 240 - 1) is PhotoProblem.TOO_MANY_PIXELS
    assert inspect(images.jpeg(), max_pixels=320 * 240).width == 320


def test_pillow_limit_applies_even_with_higher_max_pixels() -> None:
    # 100 M pixels: over Pillow's warning threshold (~89 M), under its hard error.
    bomb = images.png_header_only(10_000, 10_000)
    with pytest.warns(Image.DecompressionBombWarning):
        reason = rejection(bomb, max_pixels=500_000_000)
    assert reason is PhotoProblem.TOO_MANY_PIXELS


@pytest.mark.parametrize(
    "make",
    [
        lambda: images.large_gif((7000, 7000)),
        lambda: images.tiff((7000, 7000), "1"),
        lambda: images.bmp_header(7000, 7000),
    ],
    ids=["gif", "tiff", "bmp"],
)
def test_other_formats_are_refused_from_the_header(
    make: Callable[[], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make()

    def refuse_to_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the picture was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)
    monkeypatch.setattr(ImageFile.ImageFile, "verify", refuse_to_decode)
    assert rejection(data) is PhotoProblem.UNSUPPORTED_FORMAT


@pytest.mark.parametrize(
    ("data", "bytes_per_pixel"),
    [
        (images.png(), 4),
        (images.webp(), 16),
        (images.jpeg(progressive=True), 3),  # 4:2:0 chroma: 1.5 samples a pixel, 2 bytes each
        (images.jpeg(progressive=True, subsampling=0), 6),
    ],
    ids=["png", "webp", "progressive-jpeg", "progressive-jpeg-444"],
)
def test_formats_decoded_at_full_size_have_a_memory_budget(
    data: bytes, bytes_per_pixel: int
) -> None:
    budget = 320 * 240 * bytes_per_pixel
    assert rejection(data, decode_budget=budget - 1) is PhotoProblem.TOO_MANY_PIXELS
    assert inspect(data, decode_budget=budget).width == 320


@pytest.mark.parametrize(
    "data",
    [images.jpeg(), images.mpo(), images.jpeg(comment=b"\xff\xda looks like a scan \xff\xd9")],
    ids=["jpeg", "mpo", "markers-in-a-comment"],
)
def test_single_scan_jpeg_is_decoded_reduced_whatever_the_budget(data: bytes) -> None:
    assert inspect(data, decode_budget=0).width == 320


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    source=st.sampled_from([images.jpeg_with_metadata(), images.png(), images.webp()]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 100),
)
def test_damaged_files_never_raise_pillow_errors(
    source: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(source[: len(source) * (100 - cut) // 100 or None])
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    with contextlib.suppress(PhotoRejected):
        inspect(bytes(data))


def test_does_not_change_global_pillow_state() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    rejection(images.truncated_jpeg())
    rejection(images.png_header_only(20_000, 20_000))
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


# --- bounded memory --------------------------------------------------------------------

MEMORY_BOUND_MB = 150  # measured: at most about 90 MB; before the photo limits, up to 940 MB
_CHILD = """
import sys
from pathlib import Path
from zoneinfo import ZoneInfo
from services.photos import PhotoRejected, inspect_photo

def megabytes(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
    return int(line.split()[1]) / 1024

data = Path(sys.argv[1]).read_bytes()
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
before = megabytes("VmRSS:")
try:
    evidence = inspect_photo(data, local_tz=ZoneInfo("UTC"), max_side=int(sys.argv[2]))
    outcome = f"{evidence.width}x{evidence.height}"
except PhotoRejected as rejected:
    outcome = rejected.reason.value
print(megabytes("VmHWM:") - before, outcome)
"""


def checked_in_a_fresh_process(data: bytes, tmp_path: Path) -> tuple[float, str]:
    """(peak MB used, outcome) of one check with default limits, in a new Python process.

    Not tracemalloc: Pillow allocates pixels with malloc, which tracemalloc does not see.
    """
    path = tmp_path / "photo"
    path.write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(EVIDENCE_MAX_SIDE)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    peak, outcome = done.stdout.split()
    return float(peak), outcome


def big_jpeg(size: tuple[int, int]) -> bytes:
    return images.jpeg(images.picture(9, size), quality=80)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("make", "outcome"),
    [
        (lambda: images.png_rgba(7000, 7000, orientation=6), "too_many_pixels"),
        (lambda: images.png_rgba(4096, 4000, orientation=6), "1562x1600"),
        (lambda: images.webp(Image.new("RGBA", (2048, 2048), (9, 9, 9, 99))), "1600x1600"),
        (lambda: big_jpeg((8660, 5773)), "1600x1067"),
        (lambda: big_jpeg((16000, 3125)), "1600x312"),
    ],
    ids=["png-7000x7000", "png-at-its-limit", "webp-at-its-limit", "jpeg-50mp", "panorama"],
)
def test_hostile_sizes_are_checked_within_bounded_memory(
    make: Callable[[], bytes], outcome: str, tmp_path: Path
) -> None:
    data = make()
    assert len(data) < 2_000_000  # small on the wire, large in pixels
    peak, result = checked_in_a_fresh_process(data, tmp_path)
    assert result == outcome
    assert peak < MEMORY_BOUND_MB


# --- EXIF GPS --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat_ref", "lon_ref", "expected"),
    [
        ("N", "E", (31.2304, 121.4737)),
        ("S", "E", (-31.2304, 121.4737)),
        ("N", "W", (31.2304, -121.4737)),
        ("S", "W", (-31.2304, -121.4737)),
    ],
)
def test_gps_hemispheres_end_to_end(
    lat_ref: str, lon_ref: str, expected: tuple[float, float]
) -> None:
    gps = images.gps_ifd(lat_ref, images.dms(31, 13, 4944), lon_ref, images.dms(121, 28, 2532))
    evidence = inspect(images.jpeg(exif=images.make_exif(gps=gps)))
    assert evidence.gps == pytest.approx(expected, abs=1e-6)


def gps_of(ifd: dict[int, object]) -> tuple[float, float] | None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(ifd)
    return gps_from_exif(exif)


def test_gps_rationals_as_tuples_and_bytes_refs() -> None:
    ifd = images.gps_ifd("N", ((39, 1), (54, 1), (2700, 100)), "E", ((116, 1), (23, 1), (0, 1)))
    assert gps_of(ifd) == pytest.approx((39.9075, 116.383333), abs=1e-6)
    ifd[ExifTags.GPS.GPSLatitudeRef] = b"S\x00"
    assert gps_of(ifd) == pytest.approx((-39.9075, 116.383333), abs=1e-6)


@pytest.mark.parametrize(
    "bad_seconds",
    [IFDRational(5, 0), IFDRational(0, 0), (7, 0), (0, 0)],
    ids=["ifd-x/0", "ifd-0/0", "tuple-x/0", "tuple-0/0"],
)
def test_gps_zero_denominator_is_unusable(bad_seconds: images.Rational) -> None:
    lat = (IFDRational(39, 1), IFDRational(54, 1), bad_seconds)
    assert gps_of(images.gps_ifd("N", lat, "E", images.dms(116, 23, 0))) is None


def test_gps_zero_denominator_survives_a_real_file() -> None:
    lat = (IFDRational(39, 1), IFDRational(54, 1), IFDRational(0, 0))
    gps = images.gps_ifd("N", lat, "E", images.dms(116, 23, 0))
    assert inspect(images.jpeg(exif=images.make_exif(gps=gps))).gps is None


@pytest.mark.parametrize(
    "ifd",
    [
        images.gps_ifd(None, images.dms(39, 54, 0), "E", images.dms(116, 23, 0)),
        images.gps_ifd("N", images.dms(39, 54, 0), None, images.dms(116, 23, 0)),
        images.gps_ifd("X", images.dms(39, 54, 0), "E", images.dms(116, 23, 0)),
        images.gps_ifd("NS", images.dms(39, 54, 0), "E", images.dms(116, 23, 0)),
        images.gps_ifd("N", images.dms(0, 0, 0), "E", images.dms(0, 0, 0)),
        images.gps_ifd("N", images.dms(91, 0, 0), "E", images.dms(116, 23, 0)),
        images.gps_ifd("N", images.dms(39, 60, 0), "E", images.dms(116, 23, 0)),
        images.gps_ifd("N", images.dms(39, 54, 0), "E", images.dms(181, 0, 0)),
        {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (IFDRational(39, 1),)},
        {},
    ],
    ids=[
        "no-lat-ref",
        "no-lon-ref",
        "bad-ref",
        "two-refs",
        "null-island",
        "lat>90",
        "minutes>=60",
        "lon>180",
        "one-component",
        "empty",
    ],
)
def test_gps_unusable(ifd: dict[int, object]) -> None:
    assert gps_of(ifd) is None


# --- EXIF capture time -----------------------------------------------------------------


def test_taken_at_with_offset() -> None:
    exif = images.make_exif(date_time_original="2024:05:06 07:08:09", offset_time_original="-05:30")
    expected = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    assert taken_at_from_exif(exif, SHANGHAI) == expected


def test_taken_at_without_offset_uses_local_tz() -> None:
    exif = images.make_exif(date_time_original="2024:05:06 07:08:09")
    taken_at = taken_at_from_exif(exif, SHANGHAI)
    assert taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=SHANGHAI)
    assert taken_at is not None
    assert taken_at.utcoffset() == timedelta(hours=8)


def test_taken_at_end_to_end_through_a_file() -> None:
    exif = images.make_exif(date_time_original="2024:05:06 07:08:09", offset_time_original="+00:00")
    taken_at = inspect(images.jpeg(exif=exif)).taken_at
    assert taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_taken_at_falls_back_to_datetime() -> None:
    exif = images.make_exif(date_time="2023:01:02 03:04:05")
    assert taken_at_from_exif(exif, UTC) == datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    exif = images.make_exif(
        date_time="2023:01:02 03:04:05", date_time_original="0000:00:00 00:00:00"
    )
    assert taken_at_from_exif(exif, UTC) == datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2024-05-06 07:08:09", "", "garbage"]
)
def test_taken_at_invalid_is_none(value: str) -> None:
    assert taken_at_from_exif(images.make_exif(date_time_original=value), UTC) is None


def test_taken_at_invalid_offset_falls_back_to_local_tz() -> None:
    exif = images.make_exif(date_time_original="2024:05:06 07:08:09", offset_time_original="   :  ")
    assert taken_at_from_exif(exif, SHANGHAI) == datetime(2024, 5, 6, 7, 8, 9, tzinfo=SHANGHAI)


# --- lookalikes and staleness ----------------------------------------------------------


def test_phash_matches_reencoded_copies() -> None:
    original = inspect(images.jpeg(images.picture(11, (800, 600)))).phash
    smaller = images.picture(11, (800, 600)).resize((400, 300))
    for copy in (
        images.jpeg(images.picture(11, (800, 600)), quality=30),
        images.jpeg(smaller, quality=60),
        images.png(smaller),
        images.webp(images.picture(11, (800, 600))),
    ):
        assert hamming(original, inspect(copy).phash) <= LOOKALIKE_DISTANCE


def test_phash_differs_for_different_pictures() -> None:
    hashes = [inspect(images.jpeg(images.picture(seed))).phash for seed in range(20, 30)]
    for i, a in enumerate(hashes):
        for b in hashes[i + 1 :]:
            assert hamming(a, b) > LOOKALIKE_DISTANCE


def test_hamming() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(0, 2**64 - 1) == 64


def test_is_stale() -> None:
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    week = timedelta(days=7)
    assert not is_stale(None, now, week)
    assert not is_stale(now - timedelta(days=6), now, week)
    assert is_stale(now - timedelta(days=8), now, week)
    assert not is_stale(now + timedelta(hours=20), now, week)
    assert is_stale(now + timedelta(days=2), now, week)
