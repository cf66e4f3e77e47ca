"""Hostile pictures: the stored original keeps no metadata, stays whole, never animates."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from imgbot.errors import ImageError
from imgbot.images.jpeg_scans import check_scans
from imgbot.images.renditions import prepare
from tests import hostile
from tests.conftest import run_cli
from tests.images import (
    MARKER,
    corner_colours,
    decoded,
    default_limits,
    encode,
    exif_block,
    jpeg_scan_offsets,
    jpeg_segment,
    photo_like,
    png_chunk_offsets,
    png_kinds,
    quadrants,
    same_pixels,
    webp_chunks,
)

LIMITS = default_limits()
ANIMATION_CHUNKS = {b"acTL", b"fcTL", b"fdAT"}
# Pillow warns about some of these files (a bogus MPF index, an invalid APNG); the bot runs
# with warnings shown, not raised, so these tests do too.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def stored(data: bytes) -> bytes:
    """The original ``prepare`` would store for ``data``."""
    return prepare(data, LIMITS).original.data


@pytest.mark.parametrize("name", sorted(hostile.CORPUS))
def test_corpus_file_refused_or_stored_clean(name: str) -> None:
    """Each hostile file is refused, or stored with its pixels, no planted bytes, no animation."""
    build, outcome = hostile.CORPUS[name]
    source = build()
    if outcome == "refused":
        with pytest.raises(ImageError):
            prepare(source, LIMITS)
        return
    data = stored(source)
    assert MARKER not in data
    assert same_pixels(data, source)
    if data.startswith(b"\x89PNG"):
        assert not ANIMATION_CHUNKS & set(png_kinds(data))


@pytest.mark.parametrize("name", sorted(hostile.found_files()))
def test_fuzz_finding_refused_or_stored_unchanged(name: str) -> None:
    """A file kept from fuzzing is refused, or stored decoding to exactly its own pixels."""
    source = hostile.found_files()[name]
    try:
        data = stored(source)
    except ImageError:
        return
    assert same_pixels(data, source)


@pytest.mark.parametrize("preview_format", ["jpeg", "webp"])
def test_preview_keeps_no_metadata(preview_format: str) -> None:
    """The preview carries no comment, EXIF or XMP of the upload (Pillow copies info on convert)."""
    source = encode(
        photo_like(64), "JPEG", comment=MARKER, exif=exif_block(), xmp=b"<x>" + MARKER + b"</x>"
    )
    preview = prepare(source, replace(LIMITS, preview_format=preview_format)).preview.data
    assert MARKER not in preview and b"Exif" not in preview


def test_exif_between_progressive_scans_removed() -> None:
    """An APP1 EXIF block with GPS between the scans of a progressive JPEG is not stored."""
    source = hostile.jpeg_exif_between_scans()
    data = stored(source)
    assert MARKER in source and MARKER not in data and b"Exif" not in data
    assert same_pixels(data, source)


def test_comment_with_end_marker_keeps_the_picture_whole() -> None:
    """A comment holding FF D9 between scans neither cuts the JPEG nor survives."""
    source = hostile.jpeg_comment_with_end_marker()
    data = stored(source)
    assert len(data) > 0.8 * len(source) and MARKER not in data
    assert same_pixels(data, source)


def test_jpeg_dpi_dropped() -> None:
    """The JFIF resolution is not stored (it is metadata, not pixels)."""
    data = stored(hostile.jpeg_trailing_data_and_dpi())
    assert "dpi" not in decoded(data).info


def test_jpeg_that_makes_the_transcoder_exit_is_refused() -> None:
    """A JPEG on which libjpeg's encoder calls exit() is refused; this process lives on."""
    source = hostile.jpeg_table_redefined_after_scan()
    decoded(source)  # Pillow reads it
    with pytest.raises(ImageError, match="JPEG could not be re-encoded"):
        prepare(source, LIMITS)


def test_jpeg_with_more_scans_than_the_cap_refused_before_decoding() -> None:
    """A progressive JPEG with one scan more than MAX_JPEG_SCANS is refused by counting its
    scans (the message says so), as an unusable picture; one at the cap is stored whole."""
    cap = LIMITS.max_jpeg_scans
    with pytest.raises(ImageError, match=rf"more than {cap} scans") as refused:
        prepare(hostile.jpeg_repeated_empty_scans(cap + 1), LIMITS)
    assert refused.value.kind == "invalid"
    at_cap = hostile.jpeg_repeated_empty_scans(cap)
    assert same_pixels(stored(at_cap), at_cap)


def test_scans_hidden_from_a_naive_count_are_counted() -> None:
    """Scans behind bytes a decoder skips (junk between segments, fill bytes, restart markers
    outside a scan) count; a SOS inside an EXIF thumbnail or a comment does not."""
    source = hostile.jpeg_repeated_empty_scans(LIMITS.max_jpeg_scans + 1)
    first = jpeg_scan_offsets(source)[0]
    hidden = source[:first] + b"\x00junk\xff\xd3\xff\xff" + source[first:]
    with pytest.raises(ImageError, match="scans"):
        prepare(hidden, LIMITS)
    few = hostile.jpeg_repeated_empty_scans(LIMITS.max_jpeg_scans)
    decoy = jpeg_segment(0xFE, b"\xff\xda\x00\x02" * 10) + jpeg_segment(0xE1, b"\xff\xda" * 50)
    assert same_pixels(stored(few[:2] + decoy + few[2:]), few)


def test_jpeg_colour_transforms_kept() -> None:
    """RGB (Adobe, no transform), CMYK and greyscale JPEGs keep their colours exactly."""
    for source in (
        encode(photo_like(64), "JPEG", quality=90, keep_rgb=True),
        encode(photo_like(64).convert("CMYK"), "JPEG", quality=90),
        encode(photo_like(64).convert("L"), "JPEG", quality=90, progressive=True),
    ):
        assert same_pixels(stored(source), source)


def test_jpeg_icc_profile_over_several_segments_kept() -> None:
    """An ICC profile too big for one APP2 segment (150 KB) is written back whole."""
    icc = bytes(range(256)) * 600
    data = stored(encode(photo_like(64), "JPEG", quality=90, icc_profile=icc))
    assert decoded(data).info.get("icc_profile") == icc and data.count(b"ICC_PROFILE") == 3


def test_webp_keeps_only_image_and_colour_chunks() -> None:
    """A WebP keeps no unknown chunk, no XMP and no EXIF."""
    data = stored(hostile.webp_unknown_chunks())
    assert {kind for kind, _ in webp_chunks(data)} <= {b"VP8X", b"VP8L", b"VP8 ", b"ALPH", b"ICCP"}


def test_webp_flags_and_reserved_bytes_rewritten() -> None:
    """VP8X keeps only the alpha and ICC flags that match the stored chunks."""
    data = stored(hostile.webp_stray_flags())
    assert webp_chunks(data)[0][1][:4] == bytes([0x20 | 0x10, 0, 0, 0])
    assert decoded(data).info.get("icc_profile") == hostile.sicc()


@pytest.mark.parametrize(
    "build", [hostile.webp_one_frame_animation, hostile.apng_two_animation_controls]
)
def test_animation_refused_even_when_pillow_counts_one_frame(build: object) -> None:
    """A WebP of animation chunks, or an APNG with acTL twice, is refused as animated."""
    source = build()  # type: ignore[operator]
    assert getattr(Image.open(io.BytesIO(source)), "n_frames", 1) == 1  # what let it through
    with pytest.raises(ImageError, match="animated"):
        prepare(source, LIMITS)


def test_png_without_end_chunk_stored_whole() -> None:
    """A PNG missing its IEND chunk (pixels complete) is stored with one."""
    data = stored(hostile.png_without_end())
    assert png_kinds(data)[-1] == b"IEND"


def test_png_cut_or_corrupt_pixel_data_refused() -> None:
    """A PNG whose image data stops short, or fails its CRC, is refused, as browsers refuse it."""
    with pytest.raises(ImageError, match=r"truncated|decoded"):
        prepare(hostile.png_cut_in_pixels(), LIMITS)
    with pytest.raises(ImageError, match="corrupt"):
        prepare(hostile.png_bad_pixel_checksum(), LIMITS)


def test_png_inflate_bomb_refused() -> None:
    """A PNG whose image data inflates far past its size is refused without inflating it all."""
    with pytest.raises(ImageError, match="more image data"):
        prepare(hostile.png_inflate_bomb(), LIMITS)


def test_png_icc_profile_kept_under_a_plain_name() -> None:
    """The ICC profile survives; the profile name (free text) does not."""
    data = stored(hostile.png_data_in_kept_chunks())
    assert decoded(data).info.get("icc_profile") == hostile.sicc()
    assert png_chunk_offsets(data).keys() == {b"IHDR", b"iCCP", b"IDAT", b"IEND"}


def test_png_orientation_applied_to_neither() -> None:
    """A PNG tagged Orientation=3: no tag stored, and the preview is not turned either."""
    prepared = prepare(hostile.png_orientation(), LIMITS)
    original = decoded(prepared.original.data)
    assert b"eXIf" not in prepared.original.data and not original.getexif()
    preview = decoded(prepared.preview.data)
    assert preview.size == original.size
    assert corner_colours(preview) == corner_colours(original)


def test_webp_orientation_applied_to_neither() -> None:
    """A WebP tagged Orientation=6: original 200x100 without EXIF, preview 200x100 too."""
    prepared = prepare(hostile.webp_orientation(), LIMITS)
    original = decoded(prepared.original.data)
    assert original.size == (200, 100) and not original.getexif()
    preview = decoded(prepared.preview.data)
    assert preview.size == (200, 100)
    assert corner_colours(preview) == corner_colours(original)


def test_jpeg_orientation_only_in_xmp_not_applied() -> None:
    """Orientation written only in XMP (which browsers ignore) turns neither rendition."""
    prepared = prepare(hostile.jpeg_xmp_orientation(), LIMITS)
    original = decoded(prepared.original.data)
    assert not original.getexif() and b"xmpmeta" not in prepared.original.data
    preview = decoded(prepared.preview.data)
    assert preview.size == original.size == (80, 40)
    assert corner_colours(preview) == corner_colours(original)


def test_jpeg_orientation_kept_and_preview_upright() -> None:
    """A JPEG tagged Orientation=3 keeps that one tag; the preview is drawn turned 180°."""
    source = encode(quadrants(), "JPEG", quality=95, exif=hostile.orientation(3))
    prepared = prepare(source, LIMITS)
    original = decoded(prepared.original.data)
    assert dict(original.getexif()) == {0x0112: 3}
    upright = corner_colours(original.transpose(Image.Transpose.ROTATE_180))
    assert corner_colours(decoded(prepared.preview.data)) == upright


@pytest.mark.parametrize(
    "build",
    [hostile.apng_two_animation_controls, lambda: hostile.jpeg_with_segment("app2-mpf-index")],
)
def test_cli_answers_a_hostile_picture_in_one_line(
    build: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """imgbot publish of a picture Pillow warns about prints one line, no Python warning."""
    path = tmp_path / "hostile.img"
    path.write_bytes(build())  # type: ignore[operator]
    for key, value in {"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b" * 8}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:9")  # never reached: refused or stored
    done = run_cli("publish", str(path))
    assert "Warning" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_long_runs_of_fill_bytes_are_walked_in_one_pass() -> None:
    """Megabytes of 0xFF (fill bytes libjpeg skips) before a scan are walked in one pass: the
    scans behind them are still counted (a walk that backtracked over each run would not end
    within the test's time limit)."""
    source = hostile.jpeg_repeated_empty_scans(LIMITS.max_jpeg_scans + 1)
    first = jpeg_scan_offsets(source)[0]
    padded = source[:first] + b"\xff" * (4 * 1024 * 1024) + source[first:]
    with pytest.raises(ImageError, match="scans"):
        check_scans(padded, LIMITS.max_jpeg_scans)
