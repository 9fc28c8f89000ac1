"""crawler.parse_workers: pages parsed in real worker processes, and what happens when they die."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import psutil
import pytest

from crawler.config import ExtractRule
from crawler.extract import compile_rules
from crawler.parse import content_hash, parse_html
from crawler.parse_workers import InlineParser, ProcessParser

URL = "http://127.0.0.1:8000/dir/page.html"
RULES = (ExtractRule("price", ".price"), ExtractRule("tags", "li.tag", all=True))


def page_html(n: int) -> str:
    links = "".join(f'<a href="p{n}-{i}.html">link {i}</a>\n' for i in range(30))
    return (
        f"<html lang=en><head><title>Page {n}</title></head><body><h1>Head {n}</h1>"
        f'<p class="price">{n}.99</p><ul><li class="tag">a{n}</li><li class="tag">b</li></ul>'
        f"<p>Some   text\n of page {n}.</p>{links}</body></html>"
    )


# Deep nesting makes lexbor slow (quadratic in the depth): a page a worker is still busy with.
SLOW_HTML = "<div>" * 6000 + "deep" + "</div>" * 6000


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def started(parser: ProcessParser) -> ProcessParser:
    """The parser once every worker is ready (its first page starts them)."""
    await parser.parse(page_html(0).encode(), "utf-8", URL)
    await wait_for(lambda: len(parser.workers) == parser.processes)
    return parser


async def test_workers_parse_as_the_loop_does() -> None:
    parser = await started(ProcessParser(RULES, compile_rules(RULES), processes=2, inline_first=0))
    try:
        parsed = await asyncio.gather(
            *(parser.parse(page_html(n).encode(), "utf-8", URL) for n in range(40))
        )
        assert len(parser.workers) == 2
    finally:
        await parser.aclose()
    compiled = compile_rules(RULES)
    pages = [p.page for p in parsed]
    assert pages == [parse_html(page_html(n), URL, compiled) for n in range(40)]
    assert [p.content_hash for p in parsed] == [
        content_hash(page_html(n).encode()) for n in range(40)
    ]
    assert pages[3].data == {"price": "3.99", "tags": ["a3", "b"]}
    assert len(pages[3].links) == 30


async def test_the_body_is_decoded_with_the_encoding_given() -> None:
    """The fetcher only sniffs the encoding; worker and loop decode the body with it."""
    body = "<title>Привет, мир</title><p>Ёлка \ufffd</p>".encode("cp1251", errors="replace")
    parser = await started(ProcessParser((), None, processes=1, inline_first=0))
    try:
        in_worker = await parser.parse(body, "cp1251", URL)
    finally:
        await parser.aclose()
    inline = await InlineParser(None).parse(body, "cp1251", URL)
    assert in_worker == inline
    assert in_worker.page.title == "Привет, мир"
    assert in_worker.content_hash == content_hash(body)  # of the bytes as served
    # A codec that refuses errors="replace" falls back to UTF-8 rather than failing.
    undecodable = await InlineParser(None).parse("<title>é</title>".encode(), "idna", URL)
    assert undecodable.page.title == "é"


async def test_a_small_crawl_starts_no_process() -> None:
    parser = ProcessParser((), None, processes=1, inline_first=3)
    try:
        for n in range(3):
            await parser.parse(page_html(n).encode(), "utf-8", URL)
        assert parser.workers == []
        page = (await parser.parse(page_html(3).encode(), "utf-8", URL)).page
        assert page.title == "Page 3"
        await wait_for(lambda: len(parser.workers) == 1)
    finally:
        await parser.aclose()


async def test_pages_are_parsed_on_the_loop_while_the_workers_start() -> None:
    parser = ProcessParser((), None, processes=1, inline_first=0)
    try:
        pages = [await parser.parse(page_html(n).encode(), "utf-8", URL) for n in range(5)]
        assert [p.page.title for p in pages] == [f"Page {n}" for n in range(5)]
        assert parser.workers == []  # still starting: nothing waited for it
        await wait_for(lambda: len(parser.workers) == 1)
        worker = parser.workers[0]
        parsing = asyncio.create_task(parser.parse(page_html(5).encode(), "utf-8", URL))
        await wait_for(lambda: bool(worker.jobs) or parsing.done())
        assert (await parsing).page.title == "Page 5"
    finally:
        await parser.aclose()


def parser_processes() -> list[psutil.Process]:
    children = psutil.Process().children()
    return [p for p in children if "crawler.parse_workers" in " ".join(p.cmdline())]


async def test_close_while_the_workers_start_leaves_no_process() -> None:
    parser = ProcessParser((), None, processes=2, inline_first=0)
    await parser.parse(page_html(0).encode(), "utf-8", URL)
    await wait_for(lambda: bool(parser_processes()))  # spawned, not ready yet
    assert parser.workers == []
    await parser.aclose()
    assert parser.starter is not None and parser.starter.done()
    assert parser.workers == []
    assert parser_processes() == []


async def test_close_ends_the_workers() -> None:
    parser = await started(ProcessParser((), None, processes=2, inline_first=0))
    await asyncio.gather(*(parser.parse(page_html(n).encode(), "utf-8", URL) for n in range(4)))
    processes = [worker.process for worker in parser.workers]
    assert len(processes) == 2
    await parser.aclose()
    assert all(process.returncode is not None for process in processes)
    # After close, pages are still parsed (on the loop), never lost.
    assert (await parser.parse(page_html(1).encode(), "utf-8", URL)).page.title == "Page 1"


async def test_a_killed_worker_is_replaced_and_its_pages_finish(
    caplog: pytest.LogCaptureFixture,
) -> None:
    parser = await started(ProcessParser((), None, processes=1, inline_first=0))
    try:
        first = parser.workers[0].process.pid
        pending = [asyncio.create_task(parser.parse(SLOW_HTML.encode(), "utf-8", URL))]
        pending += [
            asyncio.create_task(parser.parse(page_html(n).encode(), "utf-8", URL))
            for n in range(1, 20)
        ]
        await wait_for(lambda: len(parser.workers[0].jobs) == 20)
        os.kill(first, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="crawler"):
            pages = await asyncio.gather(*pending)
        assert [p.page.title for p in pages[1:]] == [f"Page {n}" for n in range(1, 20)]
        assert parser.workers[0].process.pid != first
        assert "a parser process died" in caplog.text
    finally:
        await parser.aclose()


async def test_a_page_that_kills_two_workers_fails_alone() -> None:
    parser = await started(ProcessParser((), None, processes=1, inline_first=0))
    try:
        victim = asyncio.create_task(parser.parse(SLOW_HTML.encode(), "utf-8", URL))
        killed: set[int] = set()

        def holder() -> int | None:
            """The pid of a worker not killed yet that holds the page."""
            for worker in parser.workers:
                if worker.jobs and worker.process.pid not in killed:
                    return worker.process.pid
            return None

        for _ in range(2):
            await wait_for(lambda: holder() is not None)
            pid = holder()
            assert pid is not None
            killed.add(pid)
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match="died on this page"):
            await victim
        assert (
            await parser.parse(page_html(5).encode(), "utf-8", URL)
        ).page.title == "Page 5"  # goes on
    finally:
        await parser.aclose()


async def test_workers_that_cannot_start_leave_parsing_on_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")
    parser = ProcessParser((), None, processes=1, inline_first=0)
    try:
        with caplog.at_level(logging.WARNING, logger="crawler"):
            parsed = await parser.parse(page_html(7).encode(), "utf-8", URL)
            await wait_for(lambda: parser.disabled)
        assert parsed == (parse_html(page_html(7), URL), content_hash(page_html(7).encode()))
        parsed = await parser.parse(page_html(8).encode(), "utf-8", URL)  # on the loop
        assert parsed.page.title == "Page 8"
        assert "parser processes do not start" in caplog.text
    finally:
        await parser.aclose()


async def test_inline_parser_parses_big_documents() -> None:
    big = "<p>" + "word " * 30_000 + "</p>"
    parsed = await InlineParser(None).parse(big.encode(), "utf-8", URL)
    assert parsed.page.text.startswith("word word")
    assert parsed.content_hash == content_hash(big.encode())


CHILD = """
import asyncio, os, sys
from crawler.parse_workers import ProcessParser

async def main():
    parser = ProcessParser((), None, processes=1, inline_first=0)
    await parser.parse(b"<title>x</title>", "utf-8", "http://127.0.0.1/")
    while not parser.workers:
        await asyncio.sleep(0.01)
    print(parser.workers[0].process.pid, flush=True)
    sys.stdin.readline()  # killed while waiting here

asyncio.run(main())
"""


def test_workers_exit_when_the_crawl_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            worker = int(child.stdout.readline())
            assert alive(worker)
        finally:
            child.kill()
            child.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its killed parent"
        time.sleep(0.05)


async def test_pages_parsed_on_the_loop_take_a_turn_of_it_each() -> None:
    """A burst of responses does not hold the loop for all their parses at once."""
    parser = InlineParser(None)
    loop = asyncio.get_running_loop()
    done: list[int] = []
    turns: list[int] = []

    def tick() -> None:  # once a turn of the loop
        turns.append(len(done))
        if len(done) < 10:
            loop.call_soon(tick)

    async def one(n: int) -> None:
        await parser.parse(page_html(n).encode(), "utf-8", URL)
        done.append(n)

    loop.call_soon(tick)
    await asyncio.gather(*(one(n) for n in range(10)))
    assert max(b - a for a, b in itertools.pairwise(turns)) <= 1
