"""An encoded image's width and height, read from its header without decoding.

`image_size(data)` recognizes the formats TensorFlow's `decode_image` reads
(PNG, JPEG, GIF, BMP, WebP) by their signature bytes and returns
`(format, width, height)` from the header: PNG's IHDR chunk, JPEG's SOF
marker (found by walking the marker segments), GIF's logical screen, BMP's
BITMAPINFOHEADER, WebP's VP8X canvas or
VP8 / VP8L frame header. Anything else, or a header too short to hold the
dimensions, gives None: the decoder refuses such bytes itself, without
allocating the image.

The model server uses it to refuse an image that would decode to more than
`--max_image_pixels` before the model runs (`serving/request_limits.py`);
the exported signatures check the same in the graph
(`official/vision/tasks/image_signatures.py`).

Imports only the standard library.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers: C0..CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0..RST7, SOI, EOI.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])
_BMP_HEADER_SIZES = (12, 16, 40, 52, 56, 64, 108, 124)


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """`(format, width, height)` from the header of `data`, else None."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return "PNG", width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        if len(data) < 10:
            return None
        width, height = struct.unpack("<HH", data[6:10])
        return "GIF", width, height
    if data.startswith(b"BM"):
        return _bmp_size(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    position = 2
    end = len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            position += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _SOF_MARKERS:
            if position + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return "JPEG", width, height
        if length < 2:
            return None
        position += 2 + length
    return None


def _bmp_size(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 26:
        return None
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size not in _BMP_HEADER_SIZES:
        return None  # not a bitmap (text may start with "BM")
    # Signed 32-bit, as TensorFlow's decoder reads them (negative: top-down).
    width, height = struct.unpack("<ii", data[18:26])
    return "BMP", abs(width), abs(height)


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "WebP", width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return "WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return "WebP", width & 0x3FFF, height & 0x3FFF
    return None
