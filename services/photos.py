"""Turn an untrusted image from a rider into safe evidence for moderators.

What :func:`inspect_photo` checks, in order, and why:

* Size in bytes first, so nothing large is even parsed.
* Format allow-list (JPEG, PNG, WEBP) enforced by ``Image.open(formats=...)``, so only
  those decoders ever see the bytes. Animated or multi-frame files are refused. A JPEG
  carrying extra MPO pictures (phone depth maps, HDR gain maps) counts as a JPEG and only
  its primary picture is used.
* Decompression bombs: the pixel count is read from the header and checked *before*
  anything is decoded. The effective limit is the smaller of ``max_pixels`` and Pillow's
  own ``Image.MAX_IMAGE_PIXELS``, so an image that makes Pillow warn is always refused.
  Warning filters are not touched: ``warnings.catch_warnings`` swaps process-wide state
  and is not thread-safe, and callers run this function in worker threads.
* Bounded memory: a single-scan JPEG is decoded at a reduced scale (libjpeg's DCT scaling,
  ``draft``), so even one at ``max_pixels`` never exists at full size. PNG, WebP and a JPEG
  in several scans (progressive) need memory for every pixel of the full-size image, so
  their pixel limit is ``decode_budget`` divided by what each costs per pixel (measured,
  :data:`FULL_DECODE_BYTES_PER_PIXEL`). After decoding, the picture is reduced band by
  band to less than twice the output size before any conversion, flattening or rotation,
  and freed before the final resampling, so no full-size RGB/RGBA copy or rotated copy is
  ever made. Measured peak per photo at each format's limit, output 1600 px: about
  ``decode_budget`` + 25 MB (single-scan JPEGs at 50 MP: under 30 MB), plus the input.
  :func:`inspect_in_pool` runs at most :data:`PHOTO_WORKERS` of these at once.
* Integrity: ``verify()`` and then a full ``load()`` on a fresh handle. Truncated data is
  refused; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed.
* EXIF capture time and GPS are read for plausibility checks. Telegram strips EXIF from
  photos sent as photos, so these are only present when an image is sent as a file.
* The output is re-encoded from pixels alone: orientation applied, RGB, size capped, and
  no metadata at all (EXIF, GPS, ICC, XMP, comments). Moderators and anyone they forward
  it to see the picture, not the rider's device details or home location.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from functools import partial
from typing import Final

from PIL import ExifTags, Image, UnidentifiedImageError
from PIL.TiffImagePlugin import IFDRational

from services.geo import valid_coordinates

ALLOWED_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP"})
DEFAULT_MAX_PIXELS: Final = 50_000_000
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024
DEFAULT_MAX_SIDE: Final = 2560
DEFAULT_DECODE_BUDGET: Final = 64 * 1024 * 1024
"""Bytes one photo may take to decode when it cannot be decoded at a reduced size."""
FULL_DECODE_BYTES_PER_PIXEL: Final = {"PNG": 4, "WEBP": 16}
"""Peak memory per pixel of decoding at full size, measured (VmHWM) with Pillow 13.

PNG: Pillow's pixels, at most 4 bytes each. WebP: libwebp's canvas and its copy of the
previous frame, the decoded bytes handed to Pillow, then Pillow's image (4 bytes each).
A JPEG in several scans costs 2 bytes per sample (see :func:`_jpeg_buffer_bytes_per_pixel`).
"""
JPEG_QUALITY: Final = 85
LOOKALIKE_DISTANCE: Final = 6
"""Hamming distance between dHashes at or below which two photos look reused."""
FUTURE_TOLERANCE: Final = timedelta(days=1)
"""How far in the future a capture time may be before :func:`is_stale` flags it."""

PHOTO_WORKERS: Final = 2
"""Photos checked at once; each takes about the decode budget plus 25 MB at most."""

_POOL: Final = ThreadPoolExecutor(max_workers=PHOTO_WORKERS, thread_name_prefix="photos")
_OPEN_FORMATS: Final = tuple(sorted(ALLOWED_FORMATS))
# Formats Pillow can identify that we refuse; probed only to pick the right reason.
_PROBE_FORMATS: Final = ("GIF", "BMP", "TIFF", "ICO", "AVIF", "JPEG2000", "PSD")
# ISO-BMFF brands of HEIF/HEIC photos (iPhones), which Pillow cannot identify.
_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1"})
_EXIF_DATETIME: Final = "%Y:%m:%d %H:%M:%S"
_EXIF_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")
_RESAMPLING: Final = Image.Resampling.LANCZOS
_BAND_PIXELS: Final = 1 << 18  # pixels converted at a time while shrinking
_ORIENTATION: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_JPEG_SOS: Final = b"\xff\xda"  # start of a scan; cannot occur inside entropy-coded data
_JPEG_EOI: Final = b"\xff\xd9"


class PhotoProblem(StrEnum):
    """Why a photo was refused."""

    TOO_LARGE = "too_large"
    NOT_IMAGE = "not_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    CORRUPT = "corrupt"


class PhotoRejected(Exception):
    """The image cannot be used as evidence; ``reason`` says why."""

    def __init__(self, reason: PhotoProblem, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason


@dataclass(frozen=True)
class Evidence:
    """A cleaned, re-encoded photo plus what was learnt from the original."""

    jpeg: bytes
    sha256: str
    phash: int
    width: int
    height: int
    taken_at: datetime | None
    gps: tuple[float, float] | None
    source_format: str


def inspect_photo(
    data: bytes,
    *,
    local_tz: tzinfo,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int = DEFAULT_MAX_SIDE,
    decode_budget: int = DEFAULT_DECODE_BUDGET,
) -> Evidence:
    """Validate ``data`` and return clean evidence, or raise :class:`PhotoRejected`.

    ``local_tz`` interprets EXIF times that carry no offset. CPU-bound and synchronous:
    run it in a worker thread. No Pillow exception escapes except as PhotoRejected.
    """
    if len(data) > max_bytes:
        raise PhotoRejected(PhotoProblem.TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    source_format = _check_header(data, max_pixels, decode_budget)
    try:
        with Image.open(io.BytesIO(data), formats=_OPEN_FORMATS) as im:
            target = _fitted(im.size, max_side)
            im.draft("RGB", target)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
            im.load()
            exif = im.getexif()
            reduced = _reduced_rgb(im, target)
            if reduced is not im:
                im.close()  # frees the decoded picture (leaving `with` does not) before resampling
        picture = reduced if reduced.size == target else reduced.resize(target, _RESAMPLING)
        method = _ORIENTATION.get(exif.get(ExifTags.Base.Orientation, 1))
        if method is not None:
            picture = picture.transpose(method)
        out = io.BytesIO()
        # Without optimize=True (a second pass for Huffman tables of its own): a third of the
        # encoding's CPU saved, for a file about a tenth larger at the same quality.
        picture.save(out, "JPEG", quality=JPEG_QUALITY)
    except Exception as exc:
        raise PhotoRejected(PhotoProblem.CORRUPT, str(exc)) from exc
    taken_at, gps = _read_exif(exif, local_tz)
    return Evidence(
        jpeg=out.getvalue(),
        sha256=hashlib.sha256(data).hexdigest(),
        phash=dhash(picture),
        width=picture.width,
        height=picture.height,
        taken_at=taken_at,
        gps=gps,
        source_format=source_format,
    )


async def inspect_in_pool(
    data: bytes, *, local_tz: tzinfo, max_pixels: int, max_side: int, decode_budget: int
) -> Evidence:
    """:func:`inspect_photo` in the photos pool, never the loop's default executor.

    However many photos arrive at once, at most :data:`PHOTO_WORKERS` are being decoded,
    which bounds the memory of the whole pipeline; the others wait their turn.
    """
    check = partial(
        inspect_photo,
        data,
        local_tz=local_tz,
        max_pixels=max_pixels,
        max_side=max_side,
        decode_budget=decode_budget,
    )
    return await asyncio.get_running_loop().run_in_executor(_POOL, check)


def pixel_limit(image: Image.Image, data: bytes, max_pixels: int, decode_budget: int) -> int:
    """The most pixels ``image`` (opened from ``data``, not decoded) may have."""
    limit = (
        max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    )
    cost = _full_decode_bytes_per_pixel(image, data)
    return limit if cost is None else min(limit, int(decode_budget / cost))


def _format_of(image: Image.Image) -> str:
    return "JPEG" if image.format == "MPO" else str(image.format)


def _full_decode_bytes_per_pixel(image: Image.Image, data: bytes) -> float | None:
    """What decoding costs per pixel of the full-size image; None if it decodes reduced.

    A JPEG whose picture is one scan is decoded by libjpeg at a reduced scale a few rows
    at a time. One in several scans (progressive, or a component at a time) is buffered
    whole as DCT coefficients, whatever the output scale.
    """
    source_format = _format_of(image)
    if source_format != "JPEG":
        return FULL_DECODE_BYTES_PER_PIXEL[source_format]
    if not image.info.get("progressive") and _jpeg_scans(data) == 1:
        return None
    return _jpeg_buffer_bytes_per_pixel(image)


def _jpeg_buffer_bytes_per_pixel(image: Image.Image) -> float:
    """libjpeg's coefficient buffer per pixel: 2 bytes per sample of each component.

    Subsampled chroma has fewer samples: 1.5 per pixel for 4:2:0, 3 without subsampling.
    """
    layers: list[tuple[int, int, int, int]] = getattr(image, "layer", [])
    factors = [(h, v) for _, h, v, _ in layers]  # each component's sampling factors
    if not factors or min(h * v for h, v in factors) == 0:
        return 8.0  # four full-resolution components, the most a JPEG can have here
    h_max, v_max = max(h for h, _ in factors), max(v for _, v in factors)
    return 2 * sum(h * v for h, v in factors) / (h_max * v_max)


def _jpeg_scans(data: bytes) -> int:
    """Scans in the primary picture of a JPEG (0 if its header cannot be walked).

    The segments before the first scan are skipped by their lengths, so an EXIF thumbnail
    inside them is not counted; counting stops at the picture's end, before any MPO
    pictures. Neither marker can occur inside entropy-coded data.
    """
    position = 2
    while data[position : position + 2] != _JPEG_SOS:
        if len(data) < position + 4 or data[position] != 0xFF:
            return 0
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    end = data.find(_JPEG_EOI, position)
    return data.count(_JPEG_SOS, position, len(data) if end < 0 else end)


def _check_header(data: bytes, max_pixels: int, decode_budget: int) -> str:
    """Identify, size-check and verify ``data`` without decoding pixels; return the format."""
    try:
        with Image.open(io.BytesIO(data), formats=_OPEN_FORMATS) as im:
            width, height = im.size
            limit = pixel_limit(im, data, max_pixels, decode_budget)
            if width * height > limit:
                raise PhotoRejected(
                    PhotoProblem.TOO_MANY_PIXELS, f"{width}x{height} > {limit} pixels"
                )
            if im.format != "MPO" and getattr(im, "n_frames", 1) > 1:
                raise PhotoRejected(PhotoProblem.UNSUPPORTED_FORMAT, f"animated {im.format}")
            source_format = _format_of(im)
            im.verify()
    except PhotoRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives as an exception when the caller runs with -W error.
        raise PhotoRejected(PhotoProblem.TOO_MANY_PIXELS, str(exc)) from exc
    except UnidentifiedImageError as exc:
        reason = (
            PhotoProblem.UNSUPPORTED_FORMAT
            if _is_refused_image_format(data)
            else PhotoProblem.NOT_IMAGE
        )
        raise PhotoRejected(reason) from exc
    except Exception as exc:
        raise PhotoRejected(PhotoProblem.CORRUPT, str(exc)) from exc
    return source_format


def _is_refused_image_format(data: bytes) -> bool:
    """Whether ``data`` looks like an image in a format we do not accept."""
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return True
    try:
        with Image.open(io.BytesIO(data), formats=_PROBE_FORMATS):
            return True
    except Image.DecompressionBombError:
        return True
    except Exception:
        return False


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down so that its long side is at most ``max_side``."""
    width, height = size
    long_side = max(width, height)
    if long_side <= max_side:
        return size
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reduced_rgb(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """An RGB image (``image`` itself if it is one), no metadata, transparency flattened
    onto white, at least ``size``.

    The decoded ``image`` is converted and reduced by a whole factor one band of rows at a
    time, so no full-size copy of it is made. The result is less than twice ``size`` on
    each side, ready for one resampling to ``size`` exactly.
    """
    width, height = image.size
    factor = max(1, min(width // size[0], height // size[1]))
    if factor == 1:  # already less than twice `size`: one conversion, no bands
        # A decoded JPEG is usually RGB already: then it is used as it is, not copied.
        plain = image.mode == "RGB" and not image.has_transparency_data
        flat = image if plain else _flattened(image)
        flat.info = {}  # it carries the original's comment, ICC profile and so on
        return flat
    reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = max(factor, _BAND_PIXELS // width // factor * factor)
    for top in range(0, height, rows):
        band = _flattened(image.crop((0, top, width, min(top + rows, height))))
        reduced.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    return reduced


def _flattened(image: Image.Image) -> Image.Image:
    """RGB, with any transparency flattened onto white."""
    if not image.has_transparency_data:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: 9x8 grayscale, bit set where a pixel is brighter than its right.

    The picture is first box-reduced to about 8 times the hash's size (`reducing_gap`), then
    Lanczos-resampled: a quarter of the CPU of one Lanczos pass over the whole picture, and
    within a bit or two of its hash (well inside `LOOKALIKE_DISTANCE`), so hashes stored
    before still match."""
    pixels = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS, reducing_gap=8.0).tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            left = pixels[row * 9 + col]
            bits = (bits << 1) | (left > pixels[row * 9 + col + 1])
    return bits


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


def is_stale(taken_at: datetime | None, now: datetime, max_age: timedelta) -> bool:
    """Whether a capture time is too old to count as a fresh report.

    ``None`` (no EXIF, e.g. a Telegram photo) is not stale. A capture time more than
    :data:`FUTURE_TOLERANCE` ahead of ``now`` is also treated as stale: it means a wrong
    camera clock or edited metadata, so the time proves nothing; smaller skews (time
    zone mix-ups) are tolerated. Both datetimes must be aware.
    """
    if taken_at is None:
        return False
    return now - taken_at > max_age or taken_at - now > FUTURE_TOLERANCE


def _read_exif(
    exif: Image.Exif, local_tz: tzinfo
) -> tuple[datetime | None, tuple[float, float] | None]:
    """Capture time and GPS; malformed metadata yields ``None`` instead of a rejection."""
    try:
        return taken_at_from_exif(exif, local_tz), gps_from_exif(exif)
    except Exception:
        return None, None


def taken_at_from_exif(exif: Image.Exif, local_tz: tzinfo) -> datetime | None:
    """Aware capture time from EXIF, or ``None`` if absent or invalid.

    Uses DateTimeOriginal with OffsetTimeOriginal, else DateTime with OffsetTime. Without
    a valid offset the time is interpreted in ``local_tz``.
    """
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    for value, offset in (
        (
            exif_ifd.get(ExifTags.Base.DateTimeOriginal),
            exif_ifd.get(ExifTags.Base.OffsetTimeOriginal),
        ),
        (exif.get(ExifTags.Base.DateTime), exif_ifd.get(ExifTags.Base.OffsetTime)),
    ):
        text = _text(value)
        if text is None:
            continue
        try:
            naive = datetime.strptime(text, _EXIF_DATETIME)
        except ValueError:
            continue
        return naive.replace(tzinfo=_parse_offset(offset) or local_tz)
    return None


def _parse_offset(value: object) -> timezone | None:
    text = _text(value)
    match = _EXIF_OFFSET.fullmatch(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24) or int(minutes) >= 60:
        return None
    return timezone(-delta if sign == "-" else delta)


def gps_from_exif(exif: Image.Exif) -> tuple[float, float] | None:
    """``(lat, lon)`` from the GPS IFD, or ``None`` if missing or implausible.

    Each of GPSLatitude/GPSLongitude must be three rationals (degrees, minutes, seconds),
    given as IFDRational or ``(num, den)`` tuples. Any zero denominator, including 0/0,
    makes the position unusable: we cannot tell how precise it is, and a wrong location
    is worse than none. Missing or unknown refs, minutes/seconds outside [0, 60),
    out-of-range results and exactly (0, 0) also give ``None``. 'S' and 'W' negate.
    """
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    lat = _dms(
        gps.get(ExifTags.GPS.GPSLatitude), _text(gps.get(ExifTags.GPS.GPSLatitudeRef)), ("N", "S")
    )
    lon = _dms(
        gps.get(ExifTags.GPS.GPSLongitude), _text(gps.get(ExifTags.GPS.GPSLongitudeRef)), ("E", "W")
    )
    if lat is None or lon is None or (lat == 0 and lon == 0) or not valid_coordinates(lat, lon):
        return None
    return (lat, lon)


def _dms(value: object, ref: str | None, refs: tuple[str, str]) -> float | None:
    """Signed decimal degrees from a (deg, min, sec) triple; ``refs`` is (positive, negative)."""
    if ref is None or ref.upper() not in refs or not isinstance(value, tuple) or len(value) != 3:
        return None
    decimal = 0.0
    for part, scale in zip(value, (1, 60, 3600), strict=True):
        number = _rational(part)
        if number is None or number < 0 or (scale > 1 and number >= 60):
            return None
        decimal += number / scale
    return -decimal if ref.upper() == refs[1] else decimal


def _rational(value: object) -> float | None:
    """A finite float from an IFDRational, a ``(num, den)`` tuple or a plain number."""
    num: object
    den: object
    if isinstance(value, IFDRational):
        num, den = value.numerator, value.denominator
    elif isinstance(value, tuple) and len(value) == 2:
        num, den = value
    else:
        num, den = value, 1
    if isinstance(num, bool) or not isinstance(num, int | float):
        return None
    if isinstance(den, bool) or not isinstance(den, int | float) or den == 0:
        return None
    result = num / den
    return result if math.isfinite(result) else None


def _text(value: object) -> str | None:
    """An EXIF ASCII value as stripped text, or ``None``."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ") or None
