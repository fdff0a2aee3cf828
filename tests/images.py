"""In-memory test images: photos with EXIF, other formats, broken files, bombs and hostile sizes."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

Rational = IFDRational | tuple[int, int]
DMS = tuple[Rational, Rational, Rational]


def picture(seed: int = 1, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A deterministic RGB picture with large shapes, distinct for each seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = (
            x0 + rng.randrange(width // 8, width // 2),
            y0 + rng.randrange(height // 8, height // 2),
        )
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return image


def dms(degrees: int, minutes: int, seconds_hundredths: int) -> DMS:
    """Degrees, minutes and seconds (in hundredths) as EXIF IFDRationals."""
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds_hundredths, 100))


def gps_ifd(lat_ref: str | None, lat: DMS, lon_ref: str | None, lon: DMS) -> dict[int, object]:
    """A GPS IFD; a ``None`` ref is left out."""
    ifd: dict[int, object] = {ExifTags.GPS.GPSLatitude: lat, ExifTags.GPS.GPSLongitude: lon}
    if lat_ref is not None:
        ifd[ExifTags.GPS.GPSLatitudeRef] = lat_ref
    if lon_ref is not None:
        ifd[ExifTags.GPS.GPSLongitudeRef] = lon_ref
    return ifd


def make_exif(
    *,
    orientation: int | None = None,
    date_time: str | None = None,
    date_time_original: str | None = None,
    offset_time_original: str | None = None,
    gps: Mapping[int, object] | None = None,
) -> Image.Exif:
    """An EXIF block with only the given tags."""
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if date_time is not None:
        exif[ExifTags.Base.DateTime] = date_time
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    if date_time_original is not None:
        exif_ifd[ExifTags.Base.DateTimeOriginal] = date_time_original
    if offset_time_original is not None:
        exif_ifd[ExifTags.Base.OffsetTimeOriginal] = offset_time_original
    if gps is not None:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
    return exif


def phone_exif(lat: float, lon: float) -> Image.Exif:
    """EXIF as a phone writes it: capture time now (in Beijing) and the position (lat, lon)."""

    def degrees_minutes_seconds(value: float) -> DMS:
        value = abs(value)
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        return dms(degrees, minutes, round(((value - degrees) * 60 - minutes) * 60 * 100))

    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return make_exif(
        date_time_original=f"{now:%Y:%m:%d %H:%M:%S}",
        offset_time_original="+08:00",
        gps=gps_ifd(
            "N" if lat >= 0 else "S",
            degrees_minutes_seconds(lat),
            "E" if lon >= 0 else "W",
            degrees_minutes_seconds(lon),
        ),
    )


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """``image`` saved as ``fmt`` with Pillow save parameters."""
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(
    image: Image.Image | None = None, *, exif: Image.Exif | None = None, **params: object
) -> bytes:
    """A JPEG of ``image`` (default: ``picture()``), optionally with EXIF."""
    if exif is not None:
        params["exif"] = exif
    params.setdefault("quality", 90)
    return encode(image or picture(), "JPEG", **params)


def jpeg_with_metadata() -> bytes:
    """A JPEG carrying EXIF GPS and capture time, an ICC profile, XMP and a comment."""
    exif = make_exif(
        date_time_original="2024:05:06 07:08:09",
        offset_time_original="+08:00",
        gps=gps_ifd("N", dms(39, 54, 2700), "E", dms(116, 23, 2970)),
    )
    return jpeg(
        exif=exif, icc_profile=b"not really a profile", xmp=b"<x:xmpmeta/>", comment=b"Mi 9"
    )


def orientation6_jpeg() -> tuple[bytes, Image.Image]:
    """A landscape JPEG stored sideways with Orientation 6, and the upright picture."""
    upright = picture(7, (120, 200))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    return jpeg(stored, exif=make_exif(orientation=6)), upright


def png(image: Image.Image | None = None) -> bytes:
    """A PNG of ``image`` (default: ``picture()``)."""
    return encode(image or picture(), "PNG")


def webp(image: Image.Image | None = None) -> bytes:
    """A lossless single-frame WEBP of ``image`` (default: ``picture()``)."""
    return encode(image or picture(), "WEBP", lossless=True)


def animated(fmt: str) -> bytes:
    """A two-frame animation in ``fmt`` (PNG, WEBP or GIF)."""
    return encode(picture(1), fmt, save_all=True, append_images=[picture(2)])


def gif() -> bytes:
    """A single-frame GIF."""
    return encode(picture(), "GIF")


def bmp() -> bytes:
    """A BMP."""
    return encode(picture(), "BMP")


def mpo() -> bytes:
    """A JPEG with a second MPO picture, like phone photos with depth or gain maps."""
    return encode(picture(3), "MPO", save_all=True, append_images=[picture(4, (80, 60))])


def truncated_jpeg() -> bytes:
    """The first half of a JPEG: the header parses, the scan data ends early."""
    data = jpeg(picture(5, (256, 256)))
    return data[: len(data) // 2]


def png_with_bad_crc() -> bytes:
    """A PNG whose IDAT chunk checksum does not match, caught by ``verify()``."""
    data = bytearray(png())
    idat = data.index(b"IDAT")
    data[idat + 8] ^= 0xFF
    return bytes(data)


def heic_header() -> bytes:
    """The start of an iPhone HEIC file, which Pillow cannot identify."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + bytes(64)


def text_file() -> bytes:
    """Not an image at all."""
    return b"Hello, this is a plain text file.\n" * 20


def png_bomb(width: int, height: int) -> bytes:
    """A real decompression bomb: a complete 1-bit PNG of ``width`` x ``height`` black pixels.

    A few tens of kilobytes on the wire; decoding it would need width * height pixels.
    """
    return _flat_png(width, height, bit_depth=1, colour_type=0, row_bytes=(width + 7) // 8)


def png_rgba(width: int, height: int, orientation: int | None = None, fill: int = 0x7F) -> bytes:
    """A complete 8-bit RGBA PNG of one colour (``fill`` in every byte: half-transparent grey
    by default), with an EXIF Orientation if given.

    Built a row at a time, so a huge one costs little to make: 7000 x 7000 is about 200 KB.
    """
    extra = b""
    if orientation is not None:
        exif = make_exif(orientation=orientation).tobytes()
        extra = _png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    return _flat_png(
        width, height, bit_depth=8, colour_type=6, row_bytes=4 * width, fill=fill, extra=extra
    )


def _flat_png(
    width: int,
    height: int,
    *,
    bit_depth: int,
    colour_type: int,
    row_bytes: int,
    fill: int = 0,
    extra: bytes = b"",
) -> bytes:
    """A complete PNG whose every byte of pixel data is ``fill``."""
    packer = zlib.compressobj(9)
    row = b"\x00" + bytes([fill]) * row_bytes  # filter byte "none", then the pixels
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", compressed)
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def tiff(size: tuple[int, int] = (320, 240), mode: str = "RGB") -> bytes:
    """A deflate-compressed TIFF of one colour (small even when large in pixels)."""
    return encode(Image.new(mode, size), "TIFF", compression="tiff_deflate")


def large_gif(size: tuple[int, int]) -> bytes:
    """A GIF of one colour, small on the wire whatever its size in pixels."""
    return encode(Image.new("P", size), "GIF")


def bmp_header(width: int, height: int) -> bytes:
    """An 8-bit run-length BMP declaring ``width`` x ``height`` with almost no data."""
    palette, body = bytes(1024), b"\x00\x01" * 8
    offset = 14 + 40 + len(palette)
    file_header = struct.pack("<2sIHHI", b"BM", offset + len(body), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, 256, 0)
    return file_header + info + palette + body


def png_header_only(width: int, height: int) -> bytes:
    """A 1-bit PNG declaring ``width`` x ``height`` with almost no pixel data.

    Cheap to build and to open; decoding it would need width * height pixels of memory.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
