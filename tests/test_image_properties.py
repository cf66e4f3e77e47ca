"""Properties of image intake over generated inputs (Hypothesis): refusals, pixels, no metadata."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgbot.errors import ImageError
from imgbot.images.renditions import open_image, prepare
from tests import hostile
from tests.images import (
    MARKER,
    decoded,
    default_limits,
    encode,
    exif_block,
    jpeg_scan_offsets,
    jpeg_segment,
    photo_like,
    png_chunk,
    png_chunk_offsets,
    same_pixels,
    webp_chunks,
    webp_from_chunks,
)

LIMITS = default_limits()
# Small, fast and reproducible: no example database, no deadline (a JPEG starts a transcoder).
FAST = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Planted:
    """A picture with metadata planted in it, and each planted payload."""

    source: bytes
    clean: bytes
    payloads: tuple[bytes, ...]


@cache
def _base(seed: int) -> Image.Image:
    # Made once: photo_like's noise is not seeded, and Hypothesis replays need the same bytes.
    return photo_like(48, seed=seed)


def _picture(draw: st.DrawFn) -> tuple[str, bytes]:
    """A small valid picture: PNG (several modes), baseline or progressive JPEG, or WebP."""
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    image = _base(draw(st.integers(0, 5))).resize((width, height))
    kind = draw(st.sampled_from(["png", "jpeg", "progressive", "webp-lossless", "webp-lossy"]))
    if kind == "png":
        mode = draw(st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "1", "I;16"]))
        converted = image.convert("L").convert(mode) if mode == "I;16" else image.convert(mode)
        return kind, encode(converted, "PNG", interlace=draw(st.booleans()))
    if kind in ("jpeg", "progressive"):
        mode = draw(st.sampled_from(["RGB", "L"]))
        quality = draw(st.integers(50, 95))
        return kind, encode(
            image.convert(mode), "JPEG", quality=quality, progressive=kind != "jpeg"
        )
    alpha = draw(st.booleans())
    converted = image.convert("RGBA") if alpha else image
    if alpha:
        converted.putalpha(Image.linear_gradient("L").resize(image.size))
    params: dict[str, object] = {"lossless": kind == "webp-lossless", "quality": 80}
    if draw(st.booleans()):
        params["exif"] = exif_block()  # forces the extended format (VP8X)
    return kind, encode(converted, "WEBP", **params)


@st.composite
def planted(draw: st.DrawFn) -> Planted:
    """A valid picture with 1-4 metadata blocks, each holding MARKER, at random legal places."""
    kind, clean = _picture(draw)
    source = clean
    payloads = []
    for _ in range(draw(st.integers(1, 4))):
        payload = MARKER + draw(st.binary(min_size=4, max_size=64))
        payloads.append(payload)
        if kind.startswith("webp"):
            source = _plant_webp(draw, source, payload)
        elif kind == "png":
            source = _plant_png(draw, source, payload)
        else:
            source = _plant_jpeg(draw, source, payload)
    return Planted(source, clean, tuple(payloads))


def _plant_jpeg(draw: st.DrawFn, jpeg: bytes, payload: bytes) -> bytes:
    places = [2, *jpeg_scan_offsets(jpeg)]  # after SOI, before each scan, before the end marker
    at = draw(st.sampled_from([*places, len(jpeg)]))
    if at == len(jpeg):
        return jpeg + payload  # after the end-of-image marker
    marker = draw(st.sampled_from([0xFE, 0xE0, 0xE1, 0xE2, 0xE3, 0xEC, 0xED, 0xEF]))
    body = exif_block(tag_010e=payload.hex()) if marker == 0xE1 else payload
    return jpeg[:at] + jpeg_segment(marker, body) + jpeg[at:]


def _plant_png(draw: st.DrawFn, png: bytes, payload: bytes) -> bytes:
    offsets = png_chunk_offsets(png)
    before_idat, iend = offsets[b"IDAT"][0], offsets[b"IEND"][0]
    how = draw(st.sampled_from(["tEXt", "zTXt", "iTXt", "eXIf", "prVt", "abCd", "gAMA", "IDAT"]))
    body = {
        "tEXt": b"Comment\x00" + payload,
        "zTXt": b"Comment\x00\x00" + zlib.compress(payload),
        "iTXt": b"Comment\x00\x00\x00\x00\x00" + payload,
        "gAMA": (45455).to_bytes(4, "big") + payload,  # an allowed chunk of the wrong length
    }.get(how, payload)
    if how == "IDAT":  # image data after the end of the pixel stream
        return png[:iend] + png_chunk(b"IDAT", payload) + png[iend:]
    if how == "gAMA":
        at = draw(st.sampled_from([33, before_idat]))
    else:
        at = draw(st.sampled_from([33, before_idat, iend, len(png)]))
    if at == len(png):
        return png + payload if draw(st.booleans()) else png + png_chunk(how.encode(), body)
    return png[:at] + png_chunk(how.encode(), body) + png[at:]


def _plant_webp(draw: st.DrawFn, webp: bytes, payload: bytes) -> bytes:
    chunks = webp_chunks(webp)
    kinds = [kind for kind, _ in chunks]
    places = [i for i in range(1, len(chunks) + 1) if kinds[i - 1] != b"ALPH"]
    at = draw(st.sampled_from(places))
    kind = draw(st.sampled_from([b"EXIF", b"XMP ", b"ABCD", b"abcd", b"ICCp"]))
    return webp_from_chunks([*chunks[:at], (kind, payload), *chunks[at:]])


@FAST
@given(planted())
def test_planted_metadata_never_stored_and_pixels_kept(case: Planted) -> None:
    """Metadata planted anywhere legal is in neither rendition; the original keeps its pixels."""
    prepared = prepare(case.source, LIMITS)
    stored = prepared.original.data
    for payload in case.payloads:
        assert payload not in stored
    assert MARKER not in stored and MARKER not in prepared.preview.data
    assert same_pixels(stored, case.clean)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid picture with a few bytes overwritten, cut short, or a slice repeated."""
    _, data = _picture(draw)
    edit = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["overwrite", "cut", "repeat"]))
        at = draw(st.integers(0, len(edit) - 1))
        if how == "overwrite":
            edit[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif how == "cut":
            del edit[at:]
            break
        else:
            edit[at:at] = edit[at : at + draw(st.integers(1, 64))]
    return bytes(edit)


# As in the bot, Pillow's warnings about broken files are shown, not raised.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
@FAST
@given(st.one_of(st.binary(max_size=512), damaged()))
def test_any_bytes_give_an_image_or_image_error(data: bytes) -> None:
    """For any bytes, prepare gives two decodable renditions or raises ImageError, nothing else."""
    try:
        prepared = prepare(data, LIMITS)
    except ImageError:
        return
    decoded(prepared.original.data)
    decoded(prepared.preview.data)


@FAST
@given(
    scans=st.integers(6, 200),
    cap=st.integers(32, 150),
    junk=st.binary(max_size=16).map(lambda b: b.replace(b"\xff", b"")),
)
def test_a_jpeg_is_refused_exactly_when_its_scans_pass_the_cap(
    scans: int, cap: int, junk: bytes
) -> None:
    """A progressive JPEG with repeated empty scans, with or without junk a decoder skips before
    its first scan, is refused before decoding exactly when it has more than MAX_JPEG_SCANS."""
    source = hostile.jpeg_repeated_empty_scans(scans)
    first = jpeg_scan_offsets(source)[0]
    source = source[:first] + junk + source[first:]
    limits = replace(LIMITS, max_jpeg_scans=cap)
    if scans > cap:
        with pytest.raises(ImageError, match=f"more than {cap} scans"):
            open_image(source, limits)
    else:
        assert open_image(source, limits).size == (64, 64)
