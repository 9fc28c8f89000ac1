"""A crawl whose embedded database fills its disk: one clear line, exit 3, no server left behind,
and after space is freed the next run resumes to the full page set.

The data dir lives on a small tmpfs this test mounts (as root, as CI runs; skipped otherwise):
first large, to start and migrate the database, then shrunk to what that used plus a little,
so the crawl fills it part of the way through the site; then grown again for the resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from crawler.db import embedded, embedded_access
from crawler.errors import DatabaseUnavailable
from tests.sitegen import Manifest, generate, serve_directory
from tests.speed import FAST_ENV

pytestmark = pytest.mark.db

PAGES = 600  # about 65 KB of disk a page (table, indexes, WAL): some 40 MB for the site
HEADROOM_MB = 12  # free space left for the crawl: a few hundred pages
LARGE_MB = 256
CHILD_TIMEOUT = 120
NAME = "full"


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A tmpfs of LARGE_MB, mounted for this test and unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    mount_point = Path(tempfile.mkdtemp(prefix="crawler-full-disk-"))
    mount_point.chmod(0o755)
    mounted = sh(
        "mount", "-t", "tmpfs", "-o", f"size={LARGE_MB}M,mode=0755", "tmpfs", str(mount_point)
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            embedded.stop(mount_point / "data")
        if sh("umount", str(mount_point)).returncode != 0:
            sh("umount", "-l", str(mount_point))
        shutil.rmtree(mount_point, ignore_errors=True)


def resize(mount_point: Path, megabytes: int) -> None:
    done = sh("mount", "-o", f"remount,size={megabytes}M", str(mount_point))
    assert done.returncode == 0, done.stderr


def used_mb(mount_point: Path) -> int:
    info = os.statvfs(mount_point)
    return (info.f_blocks - info.f_bfree) * info.f_frsize // (1 << 20) + 1


async def crawler(*args: str, cwd: Path) -> Done:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    try:
        async with asyncio.timeout(CHILD_TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


@contextlib.asynccontextmanager
async def generated_site(folder: Path) -> AsyncIterator[Manifest]:
    async with serve_directory(folder / "site") as (base_url, root):
        yield await asyncio.to_thread(generate, root, PAGES, base_url)


def postmasters_of(pgdata: Path) -> list[int]:
    """PIDs of processes whose command line names this pgdata (a postmaster of it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if str(pgdata).encode() in argv and argv[0].endswith(b"postgres"):
                found.append(int(entry.name))
    return found


async def stored(url: str) -> tuple[set[str], list[str], str]:
    """The crawl's pages, those stored twice, and its stored settings (as text)."""
    conn = await asyncpg.connect(url)
    try:
        pages = {r["url"] for r in await conn.fetch("SELECT url FROM pages")}
        doubled = await conn.fetch(
            "SELECT url FROM pages GROUP BY crawl_id, url HAVING count(*) > 1 ORDER BY url"
        )
        config = await conn.fetchval("SELECT string_agg(config::text, ' ') FROM crawls")
        return pages, [r["url"] for r in doubled], config
    finally:
        await conn.close()


@pytest.mark.timeout(300)
async def test_a_full_disk_stops_the_crawl_cleanly_and_a_resume_completes_it(
    small_disk: Path, tmp_path: Path
) -> None:
    data_dir = small_disk / "data"
    folder = ["--data-dir", str(data_dir)]
    ready = await crawler("db", "upgrade", *folder, cwd=tmp_path)
    assert ready.code == 0, str(ready)
    resize(small_disk, used_mb(small_disk) + HEADROOM_MB)
    async with generated_site(tmp_path) as site:
        full = await crawler(
            "crawl", site.start_url, "--name", NAME, *folder, "--database-wait", "5s",
            cwd=tmp_path,
        )  # fmt: skip
        pgdata = data_dir / "pgdata"
        # The server is gone: stopped by the crawl on its way out, at once if its shutdown
        # checkpoint could not write.
        assert await asyncio.to_thread(embedded.status, data_dir) is None, str(full)
        assert postmasters_of(pgdata) == [], "a postgres of the full data dir is still running"

        resize(small_disk, LARGE_MB)
        resumed = await crawler("crawl", "--name", NAME, *folder, cwd=tmp_path)
        assert resumed.code == 0, str(resumed)
        assert "resuming" in resumed.err, str(resumed)
        server = await asyncio.to_thread(embedded.start, data_dir)
        try:
            pages, doubled, config = await stored(server.url)
        finally:
            await asyncio.to_thread(embedded.stop, data_dir)
    missing = sorted(site.robots_html_200_urls - pages)
    assert pages == site.robots_html_200_urls, f"{len(missing)} missing, e.g. {missing[:5]}"
    assert doubled == [], doubled

    password = embedded_access.read_password(data_dir)
    assert password
    for text in (full.out, full.err, resumed.out, resumed.err, config):
        assert password not in text

    # What the user saw when the disk filled up: the crawl side, checked last so that the
    # server side above is checked whatever the crawl printed.
    assert full.code == 3, str(full)
    assert "Traceback" not in full.err, str(full)
    assert "sqlalchemy" not in (full.out + full.err).lower(), str(full)
    assert site.base_url not in full.err, f"a line per URL:\n{full}"
    said = [line for line in full.err.splitlines() if "disk is full" in line]
    assert len(said) == 1, f"not one line saying the database's disk is full:\n{full}"
