"""Deterministic synthetic websites for tests and benchmarks, and a tiny static server.

``generate(out_dir, pages, base_url, seed)`` writes a static site and returns a ``Manifest``
of what a correct crawler starting at ``base_url/index.html`` must find:

* ``pages`` HTML files of 15-40 KB (index.html, four area indexes, about.html, pages under
  docs/, blog/, products/, guides/ and a few under private/), each with a <title>, a meta
  description, a canonical link, an <h1>, <h2 id="sec-N"> sections and paragraphs;
* 20-60 ``<a href>`` links a page, written as relative paths ("../t2/p00012.html"),
  root-relative paths, absolute URLs on ``base_url``, "#fragment" variants of those, a small
  fixed set of "?query" variants of existing pages (distinct URLs serving the same bytes:
  duplicates), directory URLs ("/", "/docs/", served by their index.html), missing pages
  (404), other hosts (reserved *.example / *.invalid names), mailto:, and small .pdf/.png
  assets plus /sitemap.xml;
* robots.txt (``Disallow: /private/``; private pages are leaves of the spanning tree, so
  obeying robots.txt only removes them) and sitemap.xml.

Every page is reachable from /index.html through relative and root-relative links (an 8-ary
spanning tree), whatever port the site is served on. Absolute links use ``base_url``: serve
the site there. The manifest is computed by walking the generated link graph with a crawler's
canonicalisation (WHATWG resolution with ada-url, fragment dropped, query kept, same origin
only); only ``<a href>`` counts as a link (not <link> or sitemap entries).

``serve_directory(root)`` serves a directory on 127.0.0.1 with aiohttp in the caller's loop and
yields its base URL first, so a test can generate a site for that port into the (empty,
already served) directory. The same server runs as a process with ``--serve``.

Command line::

    python -m tests.sitegen --pages N --out DIR --base-url http://127.0.0.1:PORT [--seed S]
    python -m tests.sitegen --serve DIR [--port 0]   # prints its base URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import posixpath
import random
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ada_url
from aiohttp import web

_VOCABULARY = (
    "crawler queue fetch parse index vector shard replica latency throughput "
    "request response header cookie session cache proxy gateway schema table "
    "column row query planner executor buffer page frame socket stream "
    "protocol handshake certificate token lexer parser grammar syntax tree "
    "node edge graph walk search rank score filter bloom hash bucket ring "
    "lease lock mutex channel worker pool thread task future promise event "
    "loop timer signal handler router endpoint resource entity document "
    "archive snapshot backup restore migrate deploy release version branch "
    "commit merge review patch issue ticket sprint roadmap metric alert "
    "dashboard trace span log record field value key store object blob "
    "bucket region zone cluster server client agent robot sitemap link "
    "anchor title heading paragraph section article chapter appendix figure "
    "example tutorial guide reference manual overview summary detail note "
    "warning tip caution important history future design pattern model "
    "the a an of to in for on with by from at as is are was were be been "
    "and or but not this that these those it its they their we our you your "
    "quickly slowly carefully eventually often rarely usually always never "
    "fast slow large small early late simple complex robust fragile stable"
)
WORDS = _VOCABULARY.split()

AREAS = ("docs", "blog", "products", "guides")
N_PDF = 40
N_PNG = 40
QUERY_VARIANTS = ("?sort=title", "?sort=date", "?page=2")
FOOTER_HREF = "/index.html?ref=footer"
EXTERNAL = (
    "https://www.partner.example/",
    "https://cdn.external.example/lib/docs.html",
    "http://news.site.invalid/article?id=",
    "https://social.example/share?u=",
    "https://github.invalid/org/repo/issues/",
)
NAV = (
    ("/", "Home"),
    *((f"/{area}/", area.capitalize()) for area in AREAS),
    ("/about.html", "About"),
    ("/sitemap.xml", "Sitemap"),
)
DISALLOW = "/private/"
MIN_PAGES = 20
MIN_BYTES = 15 * 1024
MAX_BYTES = 40 * 1024
MIN_LINKS = 20
MAX_LINKS = 60
TREE_FANOUT = 8
HEADING_EVERY = 5  # an <h2 id="sec-N"> before every 5th paragraph


@dataclass(frozen=True)
class Manifest:
    """What a crawler starting at ``start_url`` must find on a generated site.

    URLs are absolute, fragments dropped, queries kept; directory URLs ("/docs/") are their
    own URLs. ``html_200_urls`` are the URLs answered 200 with text/html, ``not_found_urls``
    the 404s, ``asset_urls`` the 200s that are not HTML (.pdf, .png, sitemap.xml); the
    ``robots_`` sets are the same for a crawler that obeys robots.txt.
    """

    base_url: str
    pages: int
    seed: int
    html_200_urls: frozenset[str]
    not_found_urls: frozenset[str]
    asset_urls: frozenset[str]
    robots_html_200_urls: frozenset[str]
    robots_not_found_urls: frozenset[str]
    robots_asset_urls: frozenset[str]
    private_pages: int
    links_total: int
    html_bytes_total: int
    html_bytes_min: int
    html_bytes_max: int

    @property
    def start_url(self) -> str:
        return self.base_url + "/index.html"

    def counts(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "private_pages": self.private_pages,
            "links_total": self.links_total,
            "html_200_urls": len(self.html_200_urls),
            "not_found_urls": len(self.not_found_urls),
            "asset_urls": len(self.asset_urls),
            "robots_html_200_urls": len(self.robots_html_200_urls),
            "robots_not_found_urls": len(self.robots_not_found_urls),
            "robots_asset_urls": len(self.robots_asset_urls),
            "html_bytes_total": self.html_bytes_total,
            "html_bytes_min": self.html_bytes_min,
            "html_bytes_max": self.html_bytes_max,
        }

    def to_json(self, *, urls: bool = True) -> str:
        """The manifest as JSON: metadata, counts and (with ``urls``) the sorted URL lists."""
        doc: dict[str, Any] = {
            "base_url": self.base_url,
            "seed": self.seed,
            "start_url": self.start_url,
            "counts": self.counts(),
        }
        if urls:
            for name in _URL_SET_FIELDS:
                doc[name] = sorted(getattr(self, name))
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        doc = json.loads(text)
        counts = doc["counts"]
        return cls(
            base_url=doc["base_url"],
            pages=counts["pages"],
            seed=doc["seed"],
            private_pages=counts["private_pages"],
            links_total=counts["links_total"],
            html_bytes_total=counts["html_bytes_total"],
            html_bytes_min=counts["html_bytes_min"],
            html_bytes_max=counts["html_bytes_max"],
            **{name: frozenset(doc[name]) for name in _URL_SET_FIELDS},
        )


_URL_SET_FIELDS = (
    "html_200_urls",
    "not_found_urls",
    "asset_urls",
    "robots_html_200_urls",
    "robots_not_found_urls",
    "robots_asset_urls",
)


def served_path(url_path: str) -> str | None:
    """The file (relative to the site root) a static server answers ``url_path`` with.

    "/" and "/docs/" map to their index.html; None for paths that climb out of the root.
    """
    rel = url_path.lstrip("/")
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    rel = posixpath.normpath(rel)
    if rel.startswith("..") or rel.startswith("/"):
        return None
    return rel


# --- generation -----------------------------------------------------------------------------


def _page_path(i: int, private_start: int) -> str:
    """Path (without leading slash) of page i."""
    if i == 0:
        return "index.html"
    if i <= len(AREAS):
        return AREAS[i - 1] + "/index.html"
    if i == len(AREAS) + 1:
        return "about.html"
    if i >= private_start:
        return f"private/reports/r{i:05d}.html"
    area = AREAS[i % len(AREAS)]
    if area == "docs":
        return f"docs/s{i % 7}/t{(i // 7) % 5}/p{i:05d}.html"
    if area == "blog":
        return f"blog/{2015 + i % 10}/{1 + (i // 10) % 12:02d}/post-{i:05d}.html"
    if area == "products":
        return f"products/item-{i:05d}.html"
    return f"guides/g{i % 9}/step-{i:05d}.html"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@dataclass(frozen=True)
class _Paragraph:
    text: str
    spaces: tuple[int, ...]  # offsets of spaces: where a link may be inserted
    html: str  # the paragraph without links


def _relative(from_dir: tuple[str, ...], to_path: tuple[str, ...]) -> str:
    """Relative href from a page in folder ``from_dir`` to the file ``to_path`` (split paths)."""
    n = 0
    limit = min(len(from_dir), len(to_path) - 1)
    while n < limit and from_dir[n] == to_path[n]:
        n += 1
    return "../" * (len(from_dir) - n) + "/".join(to_path[n:])


def _paragraph_pool(rng: random.Random, n: int) -> list[_Paragraph]:
    pool = []
    for _ in range(n):
        sentences = []
        for _ in range(rng.randint(4, 8)):
            words = rng.choices(WORDS, k=rng.randint(10, 20))
            words[0] = words[0].capitalize()
            sentences.append(" ".join(words) + ".")
        text = " ".join(sentences)
        spaces = tuple(k for k, c in enumerate(text) if c == " ")
        pool.append(_Paragraph(text, spaces, f"<p>{text}</p>\n"))
    return pool


def _paragraph_html(para: _Paragraph, anchors: Sequence[str], rng: random.Random) -> str:
    spaces = para.spaces
    n = len(spaces)
    cuts = sorted([spaces[int(rng.random() * n)] for _ in anchors])
    parts = ["<p>"]
    prev = 0
    for cut, anchor in zip(cuts, anchors, strict=True):
        parts.append(para.text[prev:cut])
        parts.append(" ")
        parts.append(anchor)
        prev = cut
    parts.append(para.text[prev:])
    parts.append("</p>\n")
    return "".join(parts)


class _Resolver:
    """Canonical same-origin URLs for hrefs, memoised per (directory, href)."""

    def __init__(self, base: str) -> None:
        self.origin = ada_url.URL(base + "/").origin
        self.prefix = self.origin + "/"
        self._memo: dict[tuple[str, str], str | None] = {}

    def resolve(self, page_url: str, page_dir: str, href: str) -> str | None:
        key = ("" if href.startswith("/") or ":" in href else page_dir, href)
        try:
            return self._memo[key]
        except KeyError:
            pass
        try:
            url: str | None = ada_url.join_url(page_url, href)
        except ValueError:
            url = None
        if url is not None:
            url = url.split("#", 1)[0]
            if not url.startswith(self.prefix):
                url = None
        self._memo[key] = url
        return url


def generate(out_dir: Path, pages: int, base_url: str, seed: int = 1) -> Manifest:
    """Write a site of ``pages`` HTML pages for ``base_url`` into ``out_dir`` (absent or empty).

    The same (pages, base_url, seed) always writes the same bytes.
    """
    if pages < MIN_PAGES:
        raise ValueError(f"pages must be >= {MIN_PAGES}")
    base = base_url.rstrip("/")
    parsed = ada_url.parse_url(base + "/")
    if parsed["protocol"] not in ("http:", "https:") or parsed["pathname"] != "/":
        raise ValueError(f"base_url must be an http(s) origin without a path: {base_url!r}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)

    rng = random.Random(seed)
    pool = _paragraph_pool(rng, 1000)
    max_para = max(len(p.text) for p in pool) + 16
    headings = [_esc(" ".join(rng.sample(WORDS, 5)).capitalize()) for _ in range(64)]  # h2 texts
    n_private = max(1, pages // 50)
    private_start = pages - n_private
    # private pages must be leaves of the spanning tree
    if private_start <= (pages - 2) // TREE_FANOUT:
        raise ValueError("too few pages for the private/ leaves")
    paths = [_page_path(i, private_start) for i in range(pages)]
    dirs = [posixpath.dirname(p) for p in paths]
    path_parts = [tuple(p.split("/")) for p in paths]
    dir_parts = [pp[:-1] for pp in path_parts]
    titles = [
        " ".join(w.capitalize() for w in rng.sample(WORDS[:200], 4)) + f" - page {i}"
        for i in range(pages)
    ]
    etitles = [_esc(t) for t in titles]

    asset_paths = _write_assets(out, rng)
    missing = [f"docs/s{k % 7}/removed-{k:03d}.html" for k in range(max(5, pages // 100))]
    nav_html = "".join(f'<li><a href="{h}">{t}</a></li>' for h, t in NAV)
    nav_hrefs = [h for h, _ in NAV]
    resolver = _Resolver(base)
    made_dirs: set[str] = set()

    outlinks: list[tuple[str, ...]] = []  # per page: canonical same-origin URLs, in order
    sizes: list[int] = []
    links_total = 0
    for i in range(pages):
        src_dir = dirs[i]
        children = range(TREE_FANOUT * i + 1, min(TREE_FANOUT * i + TREE_FANOUT + 1, pages))
        extras: list[tuple[str, str]] = []
        if rng.random() < 0.15:
            area = AREAS[rng.randrange(len(AREAS))]
            extras.append((f"/{area}/index.html{rng.choice(QUERY_VARIANTS)}", "Sorted listing"))
        if rng.random() < 0.05:
            extras.append(("/" + rng.choice(missing), "Old page"))
        if rng.random() < 0.25:
            ext = rng.choice(EXTERNAL)
            if ext.endswith("="):
                ext += str(rng.randint(1, 999))
            elif ext.endswith("/"):
                ext += f"p{rng.randint(1, 99)}"
            extras.append((ext, "External resource"))
        if rng.random() < 0.2:
            extras.append(("/" + rng.choice(asset_paths), "Download"))
        if rng.random() < 0.05:
            extras.append(("mailto:team@site.invalid", "Mail us"))

        body: list[tuple[str, str]] = []  # (href as written, escaped anchor text)
        for c in children:  # spanning tree: relative or root-relative only
            rel = rng.random() < 0.7
            href = _relative(dir_parts[i], path_parts[c]) if rel else "/" + paths[c]
            if rng.random() < 0.1:
                href += f"#sec-{rng.randint(1, 5)}"
            body.append((href, etitles[c]))
        fixed = len(NAV) + 1 + len(body) + len(extras)  # + 1: the footer link
        target_links = max(rng.randint(MIN_LINKS, MAX_LINKS), fixed)
        for _ in range(target_links - fixed):
            if i < private_start and rng.random() < 0.03:
                t = private_start + int(rng.random() * n_private)
            else:
                t = int(rng.random() * private_start)
            form = rng.random()
            if form < 0.55:
                href = _relative(dir_parts[i], path_parts[t])
            elif form < 0.85:
                href = "/" + paths[t]
            else:
                href = f"{base}/{paths[t]}"
            if rng.random() < 0.12:
                href += f"#sec-{rng.randint(1, 5)}"
            body.append((href, etitles[t]))
        body.extend((h, _esc(t)) for h, t in extras)
        rng.shuffle(body)

        html = _page_html(
            i, base, paths[i], etitles[i], _esc(rng.choice(pool).text[:150]), nav_html, body,
            pool, headings, max_para, rng,
        )  # fmt: skip
        data = html.encode()
        sizes.append(len(data))
        if src_dir and src_dir not in made_dirs:
            (out / src_dir).mkdir(parents=True, exist_ok=True)
            made_dirs.add(src_dir)
        (out / paths[i]).write_bytes(data)

        hrefs = [*nav_hrefs, *(h for h, _ in body), FOOTER_HREF]
        links_total += len(hrefs)
        page_url = f"{base}/{paths[i]}"
        seen: dict[str, None] = {}
        for href in hrefs:
            url = resolver.resolve(page_url, src_dir, href)
            if url is not None:
                seen[url] = None
        outlinks.append(tuple(seen))

    (out / "robots.txt").write_text(
        f"User-agent: *\nDisallow: {DISALLOW}\n\nSitemap: {base}/sitemap.xml\n"
    )
    loc = "".join(f"  <url><loc>{base}/{p}</loc></url>\n" for p in paths)
    (out / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + loc + "</urlset>\n"
    )

    other_files = {*asset_paths, "assets/site.css", "robots.txt", "sitemap.xml"}
    graph = _Graph(resolver.prefix, {p: k for k, p in enumerate(paths)}, other_files, outlinks)
    html_all, nf_all, assets_all, reached = graph.walk(obey_robots=False)
    if reached != pages:
        raise RuntimeError(f"generator bug: only {reached} of {pages} pages reachable")
    html_r, nf_r, assets_r, _ = graph.walk(obey_robots=True)
    return Manifest(
        base_url=base,
        pages=pages,
        seed=seed,
        html_200_urls=html_all,
        not_found_urls=nf_all,
        asset_urls=assets_all,
        robots_html_200_urls=html_r,
        robots_not_found_urls=nf_r,
        robots_asset_urls=assets_r,
        private_pages=n_private,
        links_total=links_total,
        html_bytes_total=sum(sizes),
        html_bytes_min=min(sizes),
        html_bytes_max=max(sizes),
    )


def _write_assets(out: Path, rng: random.Random) -> list[str]:
    (out / "assets").mkdir()
    paths = []
    for k in range(N_PDF):
        p = f"assets/doc-{k:03d}.pdf"
        (out / p).write_bytes(
            b"%PDF-1.4\n% synthetic\n" + rng.randbytes(1500 + 37 * k) + b"\n%%EOF\n"
        )
        paths.append(p)
    for k in range(N_PNG):
        p = f"assets/img-{k:03d}.png"
        (out / p).write_bytes(b"\x89PNG\r\n\x1a\n" + rng.randbytes(800 + 23 * k))
        paths.append(p)
    (out / "assets" / "site.css").write_text(
        "body{font-family:sans-serif;max-width:60em;margin:auto}nav a{margin-right:1em}\n"
    )
    return paths


def _page_html(
    i: int,
    base: str,
    path: str,
    title: str,
    desc: str,
    nav_html: str,
    body: list[tuple[str, str]],
    pool: Sequence[_Paragraph],
    headings: Sequence[str],
    max_para: int,
    rng: random.Random,
) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n"
        f'<meta name="description" content="{desc}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="stylesheet" href="/assets/site.css">\n'
        f'<link rel="canonical" href="{base}/{path}">\n</head>\n<body>\n'
        f'<header><nav class="top"><ul>{nav_html}</ul></nav></header>\n'
        f"<main>\n<article>\n<h1>{title}</h1>\n"
    )
    tail = (
        f"</article>\n</main>\n<footer><p>Synthetic site page {i}. "
        f'<a href="{FOOTER_HREF}">Back to top</a></p></footer>\n</body>\n</html>\n'
    )
    anchors = [f'<a href="{_esc(h)}">{t}</a>' for h, t in body]
    # the last paragraph (and a heading) may overshoot the target: keep under MAX_BYTES
    target = MIN_BYTES + 512 + int(rng.random() * (MAX_BYTES - max_para - MIN_BYTES - 700))
    budget = target - len(head) - len(tail) - sum(len(a) + 1 for a in anchors)
    chosen: list[_Paragraph] = []
    size = 0
    n_pool = len(pool)
    while size < budget or len(chosen) < 3:  # each step adds a paragraph: bounded
        para = pool[int(rng.random() * n_pool)]
        chosen.append(para)
        size += len(para.text) + 8
        if len(chosen) % HEADING_EVERY == 1:
            size += len(headings[len(chosen) % len(headings)]) + 24
    per_para: list[list[str]] = [[] for _ in chosen]
    n_chosen = len(chosen)
    for anchor in anchors:
        per_para[int(rng.random() * n_chosen)].append(anchor)
    parts = [head]
    for k, (para, mine) in enumerate(zip(chosen, per_para, strict=True)):
        if k % HEADING_EVERY == 0:
            sec = k // HEADING_EVERY + 1
            parts.append(f'<h2 id="sec-{sec}">{headings[(k + 1) % len(headings)]}</h2>\n')
        parts.append(_paragraph_html(para, mine, rng) if mine else para.html)
    parts.append(tail)
    return "".join(parts)


class _Graph:
    """The generated link graph, walked breadth-first like a crawler from /index.html."""

    def __init__(
        self,
        prefix: str,
        page_index: dict[str, int],
        other_files: set[str],
        outlinks: list[tuple[str, ...]],
    ) -> None:
        self.prefix = prefix
        self.page_index = page_index
        self.other_files = other_files
        self.outlinks = outlinks

    def classify(self, url: str) -> tuple[str, int]:
        path = url[len(self.prefix) - 1 :].split("?", 1)[0]
        rel = served_path(path)
        if rel is not None:
            k = self.page_index.get(rel)
            if k is not None:
                return "html", k
            if rel in self.other_files:
                return "asset", -1
        return "404", -1

    def walk(
        self, *, obey_robots: bool
    ) -> tuple[frozenset[str], frozenset[str], frozenset[str], int]:
        start = self.prefix + "index.html"
        private = self.prefix + DISALLOW.lstrip("/")
        seen = {start}
        queue = deque([start])
        html: set[str] = set()
        not_found: set[str] = set()
        assets: set[str] = set()
        files: set[int] = set()
        while queue:  # every URL enters the queue once: bounded by the URL count
            url = queue.popleft()
            kind, k = self.classify(url)
            if kind == "404":
                not_found.add(url)
                continue
            if kind == "asset":
                assets.add(url)
                continue
            html.add(url)
            files.add(k)
            for v in self.outlinks[k]:
                if v in seen or (obey_robots and v.startswith(private)):
                    continue
                seen.add(v)
                queue.append(v)
        return frozenset(html), frozenset(not_found), frozenset(assets), len(files)


# --- serving --------------------------------------------------------------------------------


def static_app(root: Path) -> web.Application:
    """An aiohttp app serving ``root``: "/x/" serves x/index.html, "/x" redirects to "/x/"
    when x is a folder (as nginx does), missing files are 404."""
    root = Path(root).resolve()

    async def handle(request: web.Request) -> web.StreamResponse:
        rel = served_path(request.path)
        if rel is None:
            raise web.HTTPNotFound()
        target = root / rel
        maybe_dir = not request.path.endswith("/") and "." not in rel.rsplit("/", 1)[-1]
        if maybe_dir and await asyncio.to_thread(target.is_dir):
            raise web.HTTPMovedPermanently(request.path + "/")
        return web.FileResponse(target)  # 404 when missing, ETag / Last-Modified / 304

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)  # GET and HEAD
    return app


@contextlib.asynccontextmanager
async def serve_directory(
    root: Path, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[tuple[str, Path]]:
    """Serve ``root`` (created if missing) on ``host``:``port`` (0: a free port) in this loop.

    Yields ``(base_url, root)`` before anything needs to exist in ``root``, so the caller can
    ``generate(root, n, base_url)`` for the port actually bound.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    runner = web.AppRunner(static_app(root), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}", root
    finally:
        await runner.cleanup()


async def _serve_until_stopped(root: Path, port: int, max_seconds: float) -> None:
    """Serve until SIGINT/SIGTERM, the parent process dies, or ``max_seconds`` pass."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    async with serve_directory(root, port=port) as (base_url, _):
        print(base_url, flush=True)
        deadline = time.monotonic() + max_seconds
        while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.sitegen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pages", type=int, help="number of HTML pages (>= 20)")
    ap.add_argument("--out", type=Path, help="output directory (absent or empty)")
    ap.add_argument("--base-url", help="origin the site is served on, http://127.0.0.1:PORT")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--manifest", type=Path, help="manifest JSON path (default: OUT.manifest.json)")
    ap.add_argument("--serve", type=Path, metavar="DIR", help="serve DIR instead of generating")
    ap.add_argument("--port", type=int, default=0, help="with --serve: port (0: a free one)")
    ap.add_argument("--max-seconds", type=float, default=6 * 3600, help="with --serve: stop after")
    args = ap.parse_args(argv)

    if args.serve is not None:
        asyncio.run(_serve_until_stopped(args.serve, args.port, args.max_seconds))
        return 0
    if args.pages is None or args.out is None or args.base_url is None:
        ap.error("--pages, --out and --base-url are required (or --serve DIR)")
    started = time.perf_counter()
    manifest = generate(args.out, args.pages, args.base_url, args.seed)
    elapsed = time.perf_counter() - started
    path = args.manifest or args.out.parent / (args.out.name + ".manifest.json")
    path.write_text(manifest.to_json())
    print(json.dumps(manifest.counts(), indent=1))
    print(f"generated {args.pages} pages in {elapsed:.1f}s; manifest: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
