"""The ``imgbot`` command line: the only place that prints results and chooses exit codes.

Exit codes: 0 done; 2 configuration or usage error; 1 anything else, with a one-line reason.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imgbot import __version__
from imgbot.chat.aspect import aspect_of
from imgbot.chat.blocked_words import BlockedWords
from imgbot.chat.picture_count import picture_count
from imgbot.chat.prompts import clean_prompt
from imgbot.config.env_file import read_env_file
from imgbot.config.settings import MIN_PRESIGN_TTL, Settings, load_settings, unknown_settings
from imgbot.delivery.markdown import image_reply, images_reply
from imgbot.delivery.texts import SEVERAL_TITLE
from imgbot.errors import ConfigError, ImgbotError, UsageError
from imgbot.models import Published
from imgbot.service.logs import configure_logging, escape_controls

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        env_file = read_env_file()  # once; both below take its values
        for warning in unknown_settings(env_file):
            print(f"imgbot: warning: {escape_controls(warning)}", file=sys.stderr)
        settings = load_settings(env_file=env_file)
        level = settings.log_level if args.command in ("run", "simulate") else "WARNING"
        configure_logging(level, settings.secret_values())
        return handler(args, settings)
    except ConfigError as exc:
        kind = "usage" if isinstance(exc, UsageError) else "configuration"
        print(f"imgbot: {kind} error: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ImgbotError as exc:
        print(f"imgbot: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"imgbot: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgbot", description="DingTalk image bot.")
    parser.add_argument("--version", action="version", version=f"imgbot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    setup = commands.add_parser("setup", help="create the bucket, lifecycle rule and access")
    setup.add_argument(
        "--bot-user", metavar="NAME", help="also create a least-privilege MinIO user for the bot"
    )
    setup.add_argument(
        "--retention-elsewhere",
        metavar="WHAT",
        help="on a storage without lifecycle rules: what deletes old images instead "
        "(overrides RETENTION_MANAGED_ELSEWHERE)",
    )
    setup.set_defaults(handler=_setup)

    publish = commands.add_parser("publish", help="store an image file and print its links")
    publish.add_argument("file", type=Path, metavar="FILE")
    publish.add_argument("--json", action="store_true", help="print one JSON object")
    publish.set_defaults(handler=_publish)

    draw = commands.add_parser("draw", help="generate a picture for PROMPT and publish it")
    draw.add_argument("prompt", metavar="PROMPT")
    draw.add_argument("--json", action="store_true", help="print one JSON object")
    draw.set_defaults(handler=_draw)

    url = commands.add_parser("url", help="print a fresh link for a stored key (offline)")
    url.add_argument("key", metavar="KEY")
    url.add_argument("--ttl", type=int, metavar="S", help="link lifetime in seconds")
    url.set_defaults(handler=_url)

    run = commands.add_parser("run", help="run the DingTalk bot")
    run.set_defaults(handler=_run)
    simulate = commands.add_parser("simulate", help="run the bot against the built-in simulator")
    simulate.set_defaults(handler=_simulate)
    doctor = commands.add_parser("doctor", help="check storage, links, clock and DingTalk")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(handler=_doctor)
    return parser


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    from imgbot.bucket.admin import BucketAdmin
    from imgbot.setup import check_bot_user, create_bot_user, setup

    if args.retention_elsewhere is not None:
        settings = settings.with_retention_elsewhere(args.retention_elsewhere)
    if args.bot_user:
        check_bot_user(settings, args.bot_user)  # before anything is changed
    admin = BucketAdmin.from_settings(settings)
    # Each line as it is done; may quote the bucket policy's own Sids.
    setup(admin, settings, show=lambda line: print(escape_controls(line), flush=True))
    if args.bot_user:
        access_key, secret_key = create_bot_user(settings, args.bot_user, admin)
        print(f"bot user {access_key} ready; put these lines in the bot's .env:")
        print(f"S3_ACCESS_KEY={access_key}")
        print(f"S3_SECRET_KEY={secret_key}")
    return EXIT_OK


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    shown = escape_controls(str(path))
    limit = settings.max_image_bytes
    try:
        # st_size says 0 for /dev/zero, pipes and /dev/stdin: read one byte past the limit instead.
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        print(f"imgbot: cannot read {shown}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    if len(data) > limit:
        print(f"imgbot: {shown} is larger than MAX_IMAGE_BYTES={limit}", file=sys.stderr)
        return EXIT_FAILURE
    published = asyncio.run(_with_pipeline(settings, lambda p: p.publish(data), draws=False))
    _print_published(published, args.json, extra={})
    return EXIT_OK


def _draw(args: argparse.Namespace, settings: Settings) -> int:
    prompt = clean_prompt(args.prompt)  # what the bot does to a chat message, so both draw alike
    if not prompt:
        raise UsageError("PROMPT", "is empty")
    if len(prompt) > settings.max_prompt_chars:
        raise UsageError(
            "PROMPT",
            f"is {len(prompt)} characters, more than MAX_PROMPT_CHARS={settings.max_prompt_chars}",
        )
    listed = settings.blocked_words_file
    if listed is not None and BlockedWords.load(listed).refuses_now(prompt):
        # As in chat: refused before any provider call; the words are not repeated.
        raise UsageError("PROMPT", "holds a word listed in BLOCKED_WORDS_FILE")
    extra = {"prompt": prompt, "generator": settings.image_generator}
    aspect = aspect_of(prompt)  # as the bot reads a chat message's words
    asked = picture_count(prompt)
    count = min(asked, settings.max_images_per_request)
    if asked > count:
        print(
            f"imgbot: PROMPT asks for {asked} pictures; "
            f"MAX_IMAGES_PER_REQUEST={count} draws {count}",
            file=sys.stderr,
        )
    if count == 1:
        published = asyncio.run(
            _with_pipeline(settings, lambda p: p.draw(prompt, aspect=aspect), draws=True)
        )
        _print_published(published, args.json, extra=extra, prompt=prompt)
        return EXIT_OK

    async def draw_all(pipeline: Any) -> tuple[list[Published], ImgbotError | None]:
        made: list[Published] = []
        try:
            async for published in pipeline.draw_several(prompt, count, aspect=aspect):
                made.append(published)
        except ImgbotError as exc:
            if not made:
                raise
            return made, exc  # what was made is stored: it is printed, then the failure
        return made, None

    made, failure = asyncio.run(_with_pipeline(settings, draw_all, draws=True))
    if args.json:
        images = [_published_document(published, prompt) for published in made]
        markdown = images_reply(made, prompt, title=SEVERAL_TITLE.format(count=len(made)))
        # The first picture's fields stay at the top, so a script reading one picture still works.
        document = {**images[0], "images": images, "markdown": markdown, **extra}
        print(json.dumps(document, ensure_ascii=False))
    else:
        for number, published in enumerate(made, start=1):
            print(f"picture {number} of {len(made)}")
            _print_published(published, False, extra={})
    if failure is not None:
        print(
            f"imgbot: {len(made)} of {count} pictures made; then: {escape_controls(str(failure))}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


async def _with_pipeline(settings: Settings, action: Callable[[Any], Any], *, draws: bool) -> Any:
    """Run ``action`` on a pipeline built from settings. Only a command that ``draws`` builds
    the generator IMAGE_GENERATOR names (and so needs its keys); publishing never calls one, so
    the offline placeholder, which needs nothing, fills the pipeline's place for it."""
    from imgbot.generators import Generator, build_generator
    from imgbot.generators.placeholder import PlaceholderGenerator
    from imgbot.studio.pipeline import Pipeline

    generator: Generator = build_generator(settings) if draws else PlaceholderGenerator()
    pipeline = Pipeline.from_settings(settings, generator)
    try:
        result = await action(pipeline)
    finally:
        await pipeline.aclose()
    return result


def _print_published(
    published: Published, as_json: bool, extra: dict[str, str], prompt: str | None = None
) -> None:
    document = {**_published_document(published, prompt), **extra}
    if as_json:
        print(json.dumps(document, ensure_ascii=False))
        return
    print(f"key:          {published.key}")
    print(f"preview:      {published.preview_link.url}")
    print(f"original:     {published.original_link.url}")
    print(f"expires at:   {document['expires_at'] or 'never (public link)'}")


def _published_document(published: Published, prompt: str | None) -> dict[str, Any]:
    """The ``--json`` fields of one published picture."""
    expires = published.preview_link.expires_at
    return {
        "key": published.key,
        "preview_key": published.preview_key,
        "url": published.preview_link.url,
        "original_url": published.original_link.url,
        "expires_at": expires.isoformat().replace("+00:00", "Z") if expires else None,
        "markdown": image_reply(published, prompt),
    }


def _url(args: argparse.Namespace, settings: Settings) -> int:
    from imgbot.presign import Presigner

    if args.ttl is not None and args.ttl < MIN_PRESIGN_TTL:
        raise UsageError("--ttl", f"must be at least {MIN_PRESIGN_TTL} seconds")
    _check_key(args.key, settings.s3_prefix)
    link = Presigner.from_settings(settings).link(args.key, args.ttl)
    print(link.url)
    return EXIT_OK


def _check_key(key: str, prefix: str) -> None:
    """Sign only what imgbot stores: keys under S3_PREFIX, which the lifecycle rule covers."""
    example = f"must be an object key such as {prefix}2026/01/01/x.png"
    if len(key) <= len(prefix) or not key.startswith(prefix):
        raise UsageError("KEY", f"{example} (under S3_PREFIX={prefix})")
    # Clients and proxies collapse '.' and '..' in URL paths, so such a link reaches another key.
    if any(segment in (".", "..") for segment in key.split("/")):
        raise UsageError("KEY", f"{example}, without '.' or '..' segments")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    # The SDK's own DINGTALK_OPENAPI_ENDPOINT variable is never consulted: imgbot opens the
    # connection and sends replies itself, with the endpoint from settings.
    from imgbot.service.bot_process import run_bot

    del args
    return run_bot(settings)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from imgbot.simulate import run_simulated

    del args

    def show_chat_page(chat_url: str) -> None:
        print(f"imgbot simulator chat page: {chat_url}", flush=True)
        print("type a message there, e.g. 帮我画一只可爱的小猫 — Ctrl+C to stop", flush=True)

    return run_simulated(settings, on_ready=show_chat_page)


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from imgbot.doctor import doctor

    checks = doctor(settings)
    failed = [c for c in checks if not c.ok]
    if args.json:
        document = {"ok": not failed, "checks": [dataclasses.asdict(c) for c in checks]}
        print(json.dumps(document, ensure_ascii=False))
        return EXIT_OK if not failed else EXIT_FAILURE
    for check in checks:
        print(escape_controls(check.line()))  # may quote a storage server's error message
    print(
        f"{len(checks) - len(failed)} passed, {len(failed)} failed"
        if failed
        else f"all {len(checks)} checks passed"
    )
    return EXIT_OK if not failed else EXIT_FAILURE
