"""The synthetic site generator: page shape, determinism, and a manifest that matches the files.

The manifest is re-derived here independently of the generator: from the written files, parsed
with selectolax and resolved with urllib's ``urljoin``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
import pytest
from selectolax.lexbor import LexborHTMLParser

from tests.sitegen import (
    MAX_BYTES,
    MAX_LINKS,
    MIN_BYTES,
    MIN_LINKS,
    Manifest,
    generate,
    serve_directory,
    served_path,
)

BASE = "http://127.0.0.1:8765"
PAGES = 300
SEED = 7


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    root = tmp_path_factory.mktemp("site")
    return root, generate(root, PAGES, BASE, seed=SEED)


def html_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.html")}


def hrefs_of(data: bytes) -> list[str]:
    tree = LexborHTMLParser(data)
    return [str(node.attributes["href"]) for node in tree.css("a[href]")]


def file_of(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    rel = served_path(urlsplit(url).path)
    assert rel is not None
    return rel


def test_pages_have_title_description_h1_size_and_20_to_60_links(site):
    root, manifest = site
    files = html_files(root)
    assert len(files) == PAGES == manifest.pages
    for name, data in files.items():
        assert MIN_BYTES <= len(data) <= MAX_BYTES, name
        tree = LexborHTMLParser(data)
        assert tree.css_first("title") is not None
        assert tree.css_first('meta[name="description"]') is not None
        assert tree.css_first("h1") is not None
        assert len(tree.css("p")) >= 3
        assert MIN_LINKS <= len(tree.css("a[href]")) <= MAX_LINKS, name
    assert manifest.html_bytes_min >= MIN_BYTES
    assert manifest.html_bytes_max <= MAX_BYTES


def test_every_link_form_occurs(site):
    root, _ = site
    hrefs = [h for data in html_files(root).values() for h in hrefs_of(data)]
    checks: dict[str, Callable[[str], bool]] = {
        "relative up": lambda h: h.startswith("../"),
        "relative down": lambda h: not h.startswith(("/", "../", "#")) and ":" not in h,
        "root-relative": lambda h: h.startswith("/") and h.endswith(".html"),
        "absolute": lambda h: h.startswith(BASE + "/"),
        "fragment": lambda h: "#sec-" in h,
        "query": lambda h: "?" in h and h.startswith("/"),
        "directory": lambda h: h == "/docs/",
        "root": lambda h: h == "/",
        "missing": lambda h: "/removed-" in h,
        "external": lambda h: ".example/" in h or ".invalid/" in h,
        "mailto": lambda h: h.startswith("mailto:"),
        "pdf": lambda h: h.endswith(".pdf"),
        "png": lambda h: h.endswith(".png"),
    }
    missing = [name for name, ok in checks.items() if not any(ok(h) for h in hrefs)]
    assert missing == []
    robots = (root / "robots.txt").read_text()
    assert "Disallow: /private/" in robots
    assert (root / "sitemap.xml").read_text().count("<loc>") == PAGES


def test_same_seed_writes_the_same_bytes_and_manifest(site, tmp_path):
    root, manifest = site
    again = generate(tmp_path / "again", PAGES, BASE, seed=SEED)
    assert again == manifest
    first = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    second = {
        p.relative_to(tmp_path / "again"): p.read_bytes()
        for p in (tmp_path / "again").rglob("*")
        if p.is_file()
    }
    assert first == second
    other = generate(tmp_path / "other", PAGES, BASE, seed=SEED + 1)
    assert (tmp_path / "other" / "index.html").read_bytes() != first[Path("index.html")]
    assert other != manifest


def test_manifest_urls_match_the_files(site):
    root, m = site
    files = html_files(root)
    assert {file_of(u) for u in m.html_200_urls} == set(files)
    assert len(m.html_200_urls) > PAGES  # "/", "/docs/" and ?query variants are duplicates
    for url in m.not_found_urls:
        assert not (root / file_of(url)).exists(), url
    for url in m.asset_urls:
        assert (root / file_of(url)).is_file(), url
        assert not url.endswith(".html")
    assert all("#" not in u for u in m.html_200_urls | m.not_found_urls | m.asset_urls)
    assert m.robots_html_200_urls < m.html_200_urls
    assert m.robots_not_found_urls <= m.not_found_urls
    assert m.robots_asset_urls <= m.asset_urls
    private = {u for u in m.html_200_urls if urlsplit(u).path.startswith("/private/")}
    assert len(private) == m.private_pages
    assert m.html_200_urls - m.robots_html_200_urls == private
    assert {BASE + "/", BASE + "/docs/", BASE + "/index.html?ref=footer"} <= m.robots_html_200_urls


def walk_files(root: Path, obey_robots: bool) -> tuple[set[str], set[str], set[str]]:
    """A breadth-first crawl over the files on disk, with urllib instead of ada-url."""
    files = html_files(root)
    start = BASE + "/index.html"
    seen = {start}
    queue = deque([start])
    html: set[str] = set()
    not_found: set[str] = set()
    assets: set[str] = set()
    while queue:
        url = queue.popleft()
        rel = file_of(url)
        if rel not in files:
            (assets if (root / rel).is_file() else not_found).add(url)
            continue
        html.add(url)
        for href in hrefs_of(files[rel]):
            target = urldefrag(urljoin(url, href.strip()))[0]
            parts = urlsplit(target)
            if parts.scheme != "http" or parts.netloc != urlsplit(BASE).netloc:
                continue
            if obey_robots and parts.path.startswith("/private/"):
                continue
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return html, not_found, assets


def test_an_independent_walk_of_the_files_finds_the_manifest(site):
    root, m = site
    html, not_found, assets = walk_files(root, obey_robots=False)
    assert (html, not_found, assets) == (m.html_200_urls, m.not_found_urls, m.asset_urls)
    html, not_found, assets = walk_files(root, obey_robots=True)
    assert (html, not_found, assets) == (
        m.robots_html_200_urls,
        m.robots_not_found_urls,
        m.robots_asset_urls,
    )


def test_manifest_json_round_trips(site):
    _, m = site
    assert Manifest.from_json(m.to_json()) == m
    summary = json.loads(m.to_json(urls=False))
    assert summary["counts"]["robots_html_200_urls"] == len(m.robots_html_200_urls)
    assert "html_200_urls" not in summary


def test_generate_refuses_bad_arguments(site, tmp_path):
    root, _ = site
    with pytest.raises(FileExistsError):
        generate(root, PAGES, BASE)
    with pytest.raises(ValueError):
        generate(tmp_path / "tiny", 5, BASE)
    with pytest.raises(ValueError):
        generate(tmp_path / "path", 50, BASE + "/sub")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "index.html"),
        ("/docs/", "docs/index.html"),
        ("/docs/s1/p.html", "docs/s1/p.html"),
        ("/a/../b.html", "b.html"),
        ("/../etc/passwd", None),
    ],
)
def test_served_path(path, expected):
    assert served_path(path) == expected


async def test_serve_directory_serves_a_site_generated_for_its_port(tmp_path):
    async with (
        serve_directory(tmp_path / "www") as (base_url, root),
        aiohttp.ClientSession() as session,
    ):
        manifest = generate(root, 40, base_url)
        assert manifest.start_url == base_url + "/index.html"

        async def get(path: str) -> tuple[int, str, bytes]:
            async with session.get(base_url + path, allow_redirects=False) as resp:
                return resp.status, resp.content_type, await resp.read()

        index = (root / "index.html").read_bytes()
        assert await get("/") == (200, "text/html", index)
        assert await get("/index.html?ref=footer") == (200, "text/html", index)
        status, ctype, body = await get("/docs/")
        assert (status, ctype, body) == (200, "text/html", (root / "docs/index.html").read_bytes())
        assert (await get("/docs"))[0] == 301
        assert (await get("/docs/s1/removed-001.html"))[0] == 404
        assert (await get("/%2e%2e/%2e%2e/etc/passwd"))[0] == 404
        status, _, body = await get("/robots.txt")
        assert status == 200
        assert b"Disallow: /private/" in body
        assert (await get("/assets/img-001.png"))[:2] == (200, "image/png")
