"""Where pages are parsed: on the event loop, or in worker processes beside it.

Parsing is most of a page's Python CPU (the lexbor tree, the body text, the links), and
Python runs it under the GIL: on the loop it holds every other
task up (event-loop lag) and it keeps the whole crawl on one core. `ProcessParser` hands
the body, with the encoding the fetcher sniffed for it, to worker processes
(`python -m crawler.parse_workers`), which decode it, parse it and hash it, and awaits the parsed
`Page` with the content hash of the body, so the loop only pickles the bytes and unpickles
the result, and the parsing itself runs on another core. The body goes undecoded: sending
the decoded text too doubled what crosses the pipe, and decoding and pickling it cost the
loop's side of the hand-off more than the bytes alone.

The workers speak length-prefixed pickles over their stdin and stdout, read and written by
asyncio's own pipe transports. `concurrent.futures.ProcessPoolExecutor` did the same job at
a higher cost on the loop's side (its feeder and result threads take the GIL from
the loop for every page), and its spawn start method imports the parent's `__main__` (the
whole CLI) into every worker.

A crawl of a few pages never pays for a process: the first `INLINE_FIRST` pages are parsed
on the loop, then the workers start, in the background: pages go on being parsed on the
loop until the first worker is ready. A worker that dies (a parser crash on hostile markup,
the OOM killer) is replaced, and the pages it held are tried once more; a page that kills
the replacement too fails alone, as that page's error, and the crawl goes on. If workers
cannot start at all, pages are parsed on the loop, with a warning. Workers run in their own
session (Ctrl-C reaches only the crawl, which closes them) and exit when their stdin closes,
which also happens when the crawl is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import pickle
import signal
import struct
import sys
from typing import Any, BinaryIO, NamedTuple, Protocol

from crawler.config import ExtractRule, Settings
from crawler.extract import CompiledRules, compile_rules
from crawler.parse import content_hash, parse_html
from crawler.records import Page, decode

__all__ = ["InlineParser", "Parsed", "Parser", "ProcessParser", "parser_for"]

log = logging.getLogger("crawler")

INLINE_FIRST = 50  # pages parsed on the loop before worker processes start
PARSE_IN_THREAD = 100_000  # bytes: inline, bigger documents go to a thread
PIPE_BYTES = 1 << 20
ATTEMPTS = 2  # workers a page may be handed to before it fails
STOP_SECONDS = 5.0  # a closing worker gets this long to exit before it is killed
START_SECONDS = 30.0  # a new worker must say it is ready within this
_HEADER = struct.Struct("!I")  # the byte length of the pickle that follows
_READY = b"ready\n"


class Parsed(NamedTuple):
    """A page as parsed, with the content hash of the body it was decoded from."""

    page: Page
    content_hash: str


def _parse(body: bytes, encoding: str, url: str, rules: CompiledRules | None) -> Parsed:
    return Parsed(parse_html(decode(body, encoding), url, rules), content_hash(body))


class Parser(Protocol):
    async def parse(self, body: bytes, encoding: str, url: str) -> Parsed:
        """Parse `body`, the HTML response from `url` (its final URL) in `encoding`."""
        ...

    async def aclose(self) -> None: ...


class InlineParser:
    """Parses on the loop; big documents in a thread (lexbor's tree building, which grows
    with the square of the nesting depth, releases the GIL, so the loop keeps turning)."""

    def __init__(self, rules: CompiledRules | None) -> None:
        self.rules = rules
        # One page a turn of the loop: responses come in bursts (twenty in one turn is
        # common), and their parses back to back held the loop for a long while.
        self.turn = asyncio.Lock()

    async def parse(self, body: bytes, encoding: str, url: str) -> Parsed:
        if len(body) > PARSE_IN_THREAD:
            return await asyncio.to_thread(_parse, body, encoding, url, self.rules)
        async with self.turn:
            parsed = _parse(body, encoding, url, self.rules)
            await asyncio.sleep(0)  # the next page's parse comes in a later turn
        return parsed

    async def aclose(self) -> None:
        pass


class WorkerDied(Exception):
    """The worker process exited (or broke its pipe) with pages in hand."""


class _Job:
    __slots__ = ("attempts", "body", "encoding", "future", "url")

    def __init__(
        self, body: bytes, encoding: str, url: str, future: asyncio.Future[Parsed]
    ) -> None:
        self.body = body
        self.encoding = encoding
        self.url = url
        self.future = future
        self.attempts = 0


class _Worker:
    """One worker process and the jobs it holds."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.jobs: dict[int, _Job] = {}
        self.reader: asyncio.Task[None] | None = None

    async def hello(self, rules: tuple[ExtractRule, ...]) -> bool:
        """Send the extraction rules; wait for the worker to say it is ready."""
        assert self.process.stdin is not None and self.process.stdout is not None
        data = pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(data)) + data)
        try:
            async with asyncio.timeout(START_SECONDS):
                return await self.process.stdout.readexactly(len(_READY)) == _READY
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return False

    def send(self, job_id: int, job: _Job) -> None:
        assert self.process.stdin is not None
        job.attempts += 1
        self.jobs[job_id] = job
        data = pickle.dumps(
            (job_id, job.body, job.encoding, job.url), protocol=pickle.HIGHEST_PROTOCOL
        )
        self.process.stdin.write(_HEADER.pack(len(data)) + data)

    async def read(self) -> None:
        """Resolve the jobs as their pages come back; raise WorkerDied when it goes."""
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
                job_id, parsed, error = pickle.loads(await stdout.readexactly(size))
                job = self.jobs.pop(job_id)
                if job.future.done():
                    continue
                if error is None:
                    job.future.set_result(Parsed(*parsed))
                else:
                    job.future.set_exception(RuntimeError(f"parser error: {error}"))
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError) as exc:
            raise WorkerDied(str(exc)) from None

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WorkerDied):
                await self.reader
        process = self.process
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


class ProcessParser:
    """Parses in `processes` worker processes, after the first `inline_first` pages."""

    def __init__(
        self,
        rules: tuple[ExtractRule, ...],
        compiled: CompiledRules | None,
        processes: int,
        inline_first: int = INLINE_FIRST,
    ) -> None:
        self.rules = rules
        self.processes = processes
        self.inline = InlineParser(compiled)
        self.inline_left = inline_first
        self.workers: list[_Worker] = []
        self.starting: asyncio.Lock | None = None
        self.starter: asyncio.Task[None] | None = None
        self.ids = itertools.count()
        self.disabled = False  # workers would not start: parse on the loop from now on
        self.closed = False

    async def parse(self, body: bytes, encoding: str, url: str) -> Parsed:
        if self.inline_left > 0 or self.disabled or self.closed:
            self.inline_left -= 1
            return await self.inline.parse(body, encoding, url)
        if not self.workers:
            # The workers start in the background, and pages are parsed on the loop until
            # one is ready, rather than all waiting for its start-up (its imports: 0.1 s on
            # an idle machine, a second on a busy one, with the crawl at a standstill).
            if self.starter is None:
                self.starter = asyncio.create_task(self._start_workers())
            return await self.inline.parse(body, encoding, url)
        future: asyncio.Future[Parsed] = asyncio.get_running_loop().create_future()
        worker = min(self.workers, key=lambda w: len(w.jobs))
        worker.send(next(self.ids), _Job(body, encoding, url, future))
        return await future

    async def _start_workers(self) -> None:
        if self.starting is None:
            self.starting = asyncio.Lock()
        async with self.starting:
            while len(self.workers) < self.processes and not self.disabled:
                try:
                    process = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "crawler.parse_workers",
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        start_new_session=True,
                        limit=2**30,
                    )
                except OSError as exc:
                    self._disable(f"parser processes do not start ({exc})")
                    return
                worker = _Worker(process)
                try:
                    ready = await worker.hello(self.rules)
                except asyncio.CancelledError:  # closed while it starts
                    await worker.stop()
                    raise
                if not ready:
                    await worker.stop()
                    self._disable("parser processes do not start")
                    return
                worker.reader = asyncio.create_task(self._watch(worker))
                self.workers.append(worker)

    async def _watch(self, worker: _Worker) -> None:
        """Read the worker's answers; when it dies, hand its pages to a new one."""
        with contextlib.suppress(WorkerDied):
            await worker.read()
        if self.closed:
            return
        self.workers.remove(worker)
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        await worker.process.wait()
        jobs = [(i, job) for i, job in worker.jobs.items() if not job.future.done()]
        log.warning("a parser process died with %d pages in hand; starting a new one", len(jobs))
        await self._start_workers()
        for job_id, job in jobs:
            if job.attempts >= ATTEMPTS or self.disabled or not self.workers:
                job.future.set_exception(RuntimeError("the parser process died on this page"))
            else:
                min(self.workers, key=lambda w: len(w.jobs)).send(job_id, job)

    def _disable(self, reason: str) -> None:
        if not self.disabled:
            log.warning("%s; parsing in the crawl's own process", reason)
        self.disabled = True

    async def aclose(self) -> None:
        self.closed = True
        if self.starter is not None:
            self.starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.starter
        workers, self.workers = self.workers, []
        await asyncio.gather(*(worker.stop() for worker in workers))
        for worker in workers:
            for job in worker.jobs.values():
                if not job.future.done():
                    job.future.set_exception(RuntimeError("the parser was closed"))


def parser_for(settings: Settings, compiled: CompiledRules | None) -> Parser:
    """The crawl's parser: --parse-processes workers, or the loop itself with 0."""
    if settings.parse_processes == 0:
        return InlineParser(compiled)
    return ProcessParser(settings.extract, compiled, settings.parse_processes)


# --- the worker process -------------------------------------------------------------------


def _read_frame(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return pickle.loads(body)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """The worker's loop: the rules first, then (id, body, encoding, url) in, (id, (page, hash),
    error) out."""
    rules: tuple[ExtractRule, ...] = _read_frame(stdin)
    compiled = compile_rules(rules) if rules else None
    stdout.write(_READY)
    stdout.flush()
    while True:
        try:
            job_id, body, encoding, url = _read_frame(stdin)
        except EOFError:
            return
        try:
            page, digest = _parse(body, encoding, url, compiled)
            # A plain tuple: run as `python -m`, this module is __main__, and a Parsed made
            # here would not unpickle in the crawl.
            answer: tuple[int, tuple[Page, str] | None, str | None] = (job_id, (page, digest), None)
        except Exception as exc:  # parse_html is built never to raise; a bug must not kill us
            answer = (job_id, None, f"{type(exc).__name__}: {exc}"[:300])
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(_HEADER.pack(len(data)) + data)
        stdout.flush()


def _widen_pipes(*fds: int) -> None:
    """Let our pipes hold many pages (Linux: 1 MiB instead of 64 KiB), so that the crawl
    writes a page in one go rather than in pieces, each waiting for us to read the last."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        for fd in fds:
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, setsize, PIPE_BYTES)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the crawl decides when we stop
    _widen_pipes(sys.stdin.fileno(), sys.stdout.fileno())
    with contextlib.suppress(BrokenPipeError):
        serve(sys.stdin.buffer, sys.stdout.buffer)
