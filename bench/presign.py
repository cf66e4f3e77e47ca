"""What signing a link costs a reply: imgbot's presigner against botocore's public API.

``.venv/bin/python -m bench.presign`` from the checkout's root (about 20 s; no services needed,
signing is local). Two signers make the same SigV4 GET link for the same key:

- **presigner**: ``imgbot.presign.Presigner.link``, botocore's query signer used directly at the
  time the presigner's clock gives;
- **client**: ``generate_presigned_url("get_object", ...)`` on a boto3 S3 client built once with
  the same endpoint, region, keys and addressing style (the public API; botocore reads the clock).

Before timing, both are checked to give the same URL for the same instant (the client's own
``X-Amz-Date``). Then rounds of ``--links`` links each, the two signers taking turns (and turns
about which goes first), in one thread pinned to one core; the figure per signer is the median
over rounds of the time per link. A reply signs two links (preview and original), so the cost to
a reply is twice the per-link time; it is set against the reply latency BENCHMARKS.md records.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from bench.report import machine
from imgbot.presign import Presigner

KEY = "imagegen/2026/12/06/abcdefghijklmnopqrstuvwxyz.preview.jpg"
ENDPOINT, BUCKET, REGION, TTL = "https://img.example.com", "imgbot", "us-east-1", 604_800
ACCESS, SECRET = "AKIAIMGBOTBENCH", "bench-secret-key-not-a-real-one"
REPLY_LATENCY_MS = 95.8
"""imgbot's median reply latency (message in → image reply) in BENCHMARKS.md's results."""


def presigner(clock: Callable[[], datetime] | None = None) -> Presigner:
    """imgbot's presigner for the benchmark's bucket."""
    made = Presigner(
        public_endpoint=ENDPOINT,
        bucket=BUCKET,
        region=REGION,
        access_key=ACCESS,
        secret_key=SECRET,
        addressing_style="path",
        ttl=TTL,
    )
    return made if clock is None else made.with_clock(clock)


def client_signer() -> Callable[[], str]:
    """``generate_presigned_url`` on a client built once, as the public API signs."""
    client = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )

    def sign() -> str:
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=TTL
        )
        return url

    return sign


def same_links(sign: Callable[[], str]) -> bool:
    """The public API's link and the presigner's, signed at the instant the client chose."""
    url = sign()
    stamp = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return presigner(lambda: signed_at).link(KEY).url == url


def per_link_us(work: Callable[[], object], links: int) -> float:
    """Microseconds per call of ``work``, over ``links`` calls."""
    started = time.perf_counter()
    for _ in range(links):
        work()
    return (time.perf_counter() - started) / links * 1e6


def main() -> None:
    """Check the two signers agree, time them, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds per signer")
    parser.add_argument("--links", type=int, default=200, help="links per round")
    args = parser.parse_args()
    ours, sign = presigner(), client_signer()
    if not same_links(sign):
        raise SystemExit("the presigner's link differs from generate_presigned_url's")
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        for _ in range(3):  # warm-up
            per_link_us(lambda: ours.link(KEY), args.links)
            per_link_us(sign, args.links)
        times: dict[str, list[float]] = {"presigner": [], "client": []}
        for round_ in range(args.rounds):
            order = ("presigner", "client") if round_ % 2 == 0 else ("client", "presigner")
            for name in order:
                work = (lambda: ours.link(KEY)) if name == "presigner" else sign
                times[name].append(per_link_us(work, args.links))
    finally:
        os.sched_setaffinity(0, cpus)
    ours_us, client_us = (statistics.median(times[n]) for n in ("presigner", "client"))
    print(machine())
    print(f"same URL for the same instant: yes; {args.rounds} rounds of {args.links} links each")
    for name, values in times.items():
        middle, low, high = statistics.median(values), min(values), max(values)
        print(f"{name:>9}: median {middle:.1f} µs/link (min {low:.1f}, max {high:.1f})")
    extra_ms = 2 * (client_us - ours_us) / 1000
    print(f"client / presigner: {client_us / ours_us:.2f}")
    print(
        f"per reply (2 links): presigner {2 * ours_us / 1000:.3f} ms, client "
        f"{2 * client_us / 1000:.3f} ms; difference {extra_ms:.3f} ms = "
        f"{100 * extra_ms / REPLY_LATENCY_MS:.2f} % of the {REPLY_LATENCY_MS} ms median reply"
    )


if __name__ == "__main__":
    main()
