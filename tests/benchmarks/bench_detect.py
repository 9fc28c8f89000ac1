"""What `--render auto` costs a static page: the detector against the crawl's own parse.

    python -m tests.benchmarks.bench_detect [--size 25000] [--number 300]

Takes a page of about SIZE bytes from a generated static site (tests.sitegen: no script), and
the same page with an analytics script in its head, and times, in this process (best of 5
repeats of NUMBER calls): the crawl's parse (`crawler.parse.parse_html`, decoding included),
the quick byte check (`clearly_static`) and the full detector (`page_facts` and
`looks_client_rendered`, decoding included). Prints one JSON line, microseconds a page.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from crawler.parse import parse_html
from crawler.render.detect import clearly_static, looks_client_rendered, page_facts
from tests.sitegen import generate

ANALYTICS = (
    b"<script async src='/a.js'></script><script>window.dataLayer = [];"
    b"function gtag(){dataLayer.push(arguments)} gtag('js', new Date());</script></head>"
)


def _page(size: int) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        generate(Path(folder), 60, "http://127.0.0.1:8000")
        bodies = [p.read_bytes() for p in sorted(Path(folder).rglob("*.html"))]
    return min(bodies, key=lambda body: abs(len(body) - size))


def _parse(body: bytes) -> object:
    return parse_html(body.decode(), "http://127.0.0.1:8000/p")


def _detect(body: bytes) -> object:
    return looks_client_rendered(page_facts(body.decode()))


def _micros(call: Callable[[], object], number: int) -> float:
    return round(min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=25_000)
    parser.add_argument("--number", type=int, default=300)
    args = parser.parse_args()
    plain = _page(args.size)
    scripted = plain.replace(b"</head>", ANALYTICS, 1)
    out: dict[str, object] = {"bytes": len(plain)}
    for name, body in (("no_script", plain), ("with_script", scripted)):
        assert clearly_static(body), name
        parse = _micros(functools.partial(_parse, body), args.number)
        quick = _micros(functools.partial(clearly_static, body), args.number)
        full = _micros(functools.partial(_detect, body), args.number)
        out[name] = {
            "parse_us": parse,
            "quick_check_us": quick,
            "quick_share_of_parse": round(quick / parse, 3),
            "full_detector_us": full,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
