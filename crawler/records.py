"""Frozen records that cross stage boundaries: task, fetch result, parsed page, link, stats.

Stages hand each other these small values, never dicts or ORM rows, so every boundary has
one typed shape that tests can build by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crawler.kinds import ErrorKind, TaskOutcome


@dataclass(frozen=True, slots=True)
class CrawlTask:
    """One frontier entry leased to this process: fetch `url` (at `depth` from a seed)."""

    frontier_id: int
    url: str
    depth: int
    attempts: int = 1
    # What an earlier run stored for the URL: validators for a conditional GET, seconds since
    # its last fetch, and whether a sitemap's lastmod says it changed since.
    etag: str | None = None
    last_modified: str | None = None
    age: float | None = None
    sitemap_newer: bool = False


def decode(body: bytes, encoding: str) -> str:
    """`body` as text in `encoding`, bad bytes replaced; UTF-8 for the codecs that refuse
    errors="replace" (idna, 'undefined')."""
    try:
        return body.decode(encoding, errors="replace")
    except (LookupError, UnicodeError):
        return body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one HTTP exchange produced, success or failure.

    `error_kind` is None on a completed exchange (any status); otherwise why it failed,
    with `error` a one-line message. `encoding` is the codec the body decodes with when it
    is HTML (sniffed by the fetcher), else None: the parser decodes the body where it parses.
    """

    url: str
    final_url: str
    status: int | None
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    encoding: str | None = None
    elapsed_ms: int = 0
    redirects: tuple[str, ...] = ()
    error_kind: ErrorKind | None = None
    error: str | None = None
    retryable: bool = False
    # When the last request's headers went out (time.monotonic(); 0: not known, not sent):
    # a host's next request is paced from it (crawler.hosts).
    sent_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def rendered(self) -> bool:
        """Is the body a browser's rendering of the page? (Only a `RenderedResult`'s is.)"""
        return False

    @property
    def text(self) -> str | None:
        """The body decoded, if it is HTML, else None. Decoded at each call: the crawl does
        not keep the text, its parser decodes the body where it parses it."""
        return None if self.encoding is None else decode(self.body, self.encoding)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


# A link as it leaves the parser: (absolute canonical URL, anchor text, nofollow).
# A plain tuple, not a class: a page has dozens of them and they are made on the hot path.
Link = tuple[str, str, bool]


@dataclass(frozen=True, slots=True)
class Page:
    """The parsed content of one HTML response."""

    title: str | None = None
    description: str | None = None
    canonical: str | None = None
    lang: str | None = None
    h1: str | None = None
    text: str = ""
    meta_robots: str | None = None
    links: tuple[Link, ...] = ()
    # Fields taken by the config's extraction rules, by rule name (stored in pages.data).
    data: dict[str, object] = field(default_factory=dict)

    @property
    def noindex(self) -> bool:
        return self.meta_robots is not None and "noindex" in self.meta_robots.lower()

    @property
    def nofollow(self) -> bool:
        return self.meta_robots is not None and "nofollow" in self.meta_robots.lower()


@dataclass(frozen=True, slots=True)
class PageRecord:
    """Everything the store writes for one completed task (one batch statement holds it
    with the other records written at the same time: crawler.db.writer)."""

    task: CrawlTask
    fetch: FetchResult
    page: Page | None
    content_hash: str | None
    enqueue: tuple[str, ...] = ()
    enqueue_depth: int = 0
    not_modified: bool = False  # answered 304 to our conditional request
    body: bytes | None = None  # the raw body, kept when --store-body is on
    # A rendered page's server HTML: its hash (pages.static_hash), and itself with --store-body
    static_hash: str | None = None
    static_body: bytes | None = None


@dataclass(slots=True)
class RunStats:
    """Counters of one process's share of a run (mutable: the pool counts into it)."""

    pages: int = 0  # HTML pages stored or confirmed unchanged (304)
    rendered: int = 0  # of those, pages stored as a browser rendered them (--render)
    fetched: int = 0  # tasks completed: fetched, failed, or refused by robots.txt
    errors: int = 0
    queued: int = 0
    retries: int = 0
    not_modified: int = 0  # answered 304
    skipped: int = 0  # not due yet (--revisit-after): not fetched
    statuses: dict[int, int] = field(default_factory=dict)
    error_kinds: dict[ErrorKind, int] = field(default_factory=dict)
    bytes: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    loop_lag_ms: dict[str, float] = field(default_factory=dict)

    def record(
        self, outcome: TaskOutcome, fetch: FetchResult | None = None, queued: int = 0
    ) -> None:
        """Count one task's outcome: `fetch` is the exchange recorded for it (PAGE,
        RECORDED and NOT_MODIFIED), `queued` the new URLs its links put in the frontier."""
        if outcome is TaskOutcome.RETRIED:
            self.retries += 1
        elif outcome is TaskOutcome.SKIPPED:
            self.skipped += 1
        elif fetch is not None:
            self._count(fetch)
            if outcome is not TaskOutcome.RECORDED:
                self.pages += 1
                if fetch.rendered:
                    self.rendered += 1
                if outcome is TaskOutcome.NOT_MODIFIED:
                    self.not_modified += 1
        if queued > 0:
            self.queued += queued

    def _count(self, result: FetchResult) -> None:
        self.fetched += 1
        self.bytes += len(result.body)
        if result.error_kind is not None:
            self.errors += 1
            self.error_kinds[result.error_kind] = self.error_kinds.get(result.error_kind, 0) + 1
        if result.status is not None:
            self.statuses[result.status] = self.statuses.get(result.status, 0) + 1

    @property
    def duration(self) -> float:
        return max(self.finished_at - self.started_at, 0.0)

    @property
    def pages_per_second(self) -> float:
        return self.fetched / self.duration if self.duration > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Booking:
    """A task claimed from the host-aware frontier, with its host's request slot booked.

    Its request may start `wait` seconds after the claim answered (never earlier). `delay`
    is the host's delay as the throttle last set it (what `Throttle.after` takes), `gap`
    the one booked: the delay, or robots.txt's Crawl-delay where that is longer. The slot
    stays taken until the frontier is told the request finished (`HostDone`) or the task is
    released.

    A host booked with no gap between its requests (`--delay 0`) may get several tasks a
    slot, a lane: the claim hands back its first booking, with the others in `then`, to run
    one after the other in that slot; the slot is freed after the last.
    """

    task: CrawlTask
    host_id: int
    wait: float
    delay: float
    gap: float
    then: tuple[Booking, ...] = ()


@dataclass(frozen=True, slots=True)
class HostTurn:
    """A slot and start of a host booked for a request with no task behind it (robots.txt
    read for the sitemaps, a sitemap): its request may start `wait` seconds after the
    booking answered. Finished like a `Booking`, with a `HostDone`."""

    host_id: int
    wait: float
    delay: float
    gap: float


@dataclass(frozen=True, slots=True)
class HostDone:
    """A request of a booked task finished: free its host's slot and pace the host.

    `started` is the request's start on the process's monotonic clock; `delay` the gap the
    host's next request start must keep from this one (the throttle's answer).
    """

    host_id: int
    started: float
    delay: float
