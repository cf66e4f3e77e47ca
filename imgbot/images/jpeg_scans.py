"""Counting a JPEG's scans before it is decoded, as libjpeg-turbo's ``djpeg -maxscans`` does.

A progressive JPEG may repeat scans that add nothing: each costs the decoder a pass over the whole
picture (about 1.2 ms at 24 megapixels) for about 12 bytes, so a few megabytes of them hold a
decoder for minutes. Real progressive JPEGs have about 10 scans (mozjpeg's lossless transcode
writes 3 for grey, 5 for colour and 17 for CMYK).

The walk reads segment lengths and finds markers the way libjpeg's marker reader does (bytes
between segments are skipped up to the next marker; a scan's data runs to the next marker that is
not a restart), so a scan cannot hide from the count behind junk that libjpeg skips, and a marker
inside a segment (an EXIF thumbnail, a comment) is not counted.
"""

from __future__ import annotations

import re

from imgbot.errors import ImageError

# A marker: 0xFF, then a byte that is neither 0x00 (a stuffed 0xFF) nor 0xFF (fill: the marker
# follows the last 0xFF of a run). One 0xFF, not "0xFF+": that backtracks over long runs of 0xFF,
# which would make the walk quadratic in the file's size.
_MARKER = re.compile(rb"\xff[^\x00\xff]")
# In a scan's entropy-coded data, restart markers (RST0-RST7) belong to the scan.
_SCAN_END = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
_SOS, _EOI, _SOI = 0xDA, 0xD9, 0xD8
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length
_MAX_SEGMENTS = 10_000
"""Segments walked before a file is refused: real JPEGs have tens (an ICC profile split over
255 APP2 segments is the largest legitimate count), and each costs this walk a step."""


def check_scans(data: bytes, max_scans: int) -> None:
    """Raise ``ImageError`` if the JPEG ``data`` has more than ``max_scans`` scans.

    Only the first picture is walked (to its end marker): that is the one that is decoded. A file
    that ends early or is malformed past some point is left to the decoder to refuse.
    """
    if not data.startswith(b"\xff\xd8"):
        return
    scans = segments = 0
    pos = 2
    while (found := _MARKER.search(data, pos)) is not None:
        marker, pos = data[found.end() - 1], found.end()
        if marker in _STANDALONE:
            continue
        if marker in (_EOI, _SOI):  # the end, or a second start (libjpeg stops there)
            return
        segments += 1
        if segments > _MAX_SEGMENTS:
            raise ImageError(f"the JPEG has more than {_MAX_SEGMENTS} segments")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > len(data):
            return
        pos += length
        if marker == _SOS:
            scans += 1
            if scans > max_scans:
                raise ImageError(f"the JPEG has more than {max_scans} scans")
            end = _SCAN_END.search(data, pos)
            if end is None:
                return
            pos = end.start()
