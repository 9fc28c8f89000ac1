"""Named read operations for reports: the runs of a crawl, what a run changed, and streaming
export of pages, links and fetches.

Everything comes back as small frozen records or plain dicts, never ORM rows. Which crawl
and run a report is about is resolved here, once: a crawl by name (default: the crawl with
the most recent run), a run by id (default: the crawl's latest run); a name or run that does
not exist is a `ConfigError`. Exports stream through a server-side cursor, so memory stays
bounded however large the crawl and its pages.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crawler.db.database import Database
from crawler.db.models import Fetch, PageRow, links_view
from crawler.db.runs import errors_of_run, pages_of_run
from crawler.errors import ConfigError

OUTCOMES = ("new", "changed", "unchanged", "gone")
TABLES = ("pages", "links", "fetches")
# An export's round trips: the first asks for this many rows, the next ones for about this
# many bytes of values (and never more rows than the caller's batch).
EXPORT_FIRST_ROWS = 50
EXPORT_BATCH_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of a crawl, with the counts of its page outcomes (from `run_changes`)."""

    id: int
    crawl: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    pages: int
    errors: int
    new: int
    changed: int
    unchanged: int
    gone: int


@dataclass(frozen=True, slots=True)
class Changes:
    """What one run found: the page URLs it saw new, changed, unchanged and gone (sorted)."""

    crawl: str
    run_id: int
    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    gone: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The `crawler changes --json` object: counts, then the URL lists under "urls"."""
        lists = {outcome: list(getattr(self, outcome)) for outcome in OUTCOMES}
        return {
            "crawl": self.crawl,
            "run_id": self.run_id,
            **{outcome: len(urls) for outcome, urls in lists.items()},
            "urls": lists,
        }


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved crawl, and a run of it (None when the crawl has no run yet)."""

    crawl_id: int
    crawl: str
    run_id: int | None


_FIND_CRAWL = text("SELECT id, name FROM crawls WHERE name = :name")
_CRAWL_OF_RUN = text(
    "SELECT c.id, c.name FROM crawl_runs r JOIN crawls c ON c.id = r.crawl_id WHERE r.id = :run"
)
# The crawl with the most recent run (run ids grow); a crawl without runs, by its creation.
_DEFAULT_CRAWL = text(
    """
    SELECT c.id, c.name FROM crawls c
    ORDER BY (SELECT max(r.id) FROM crawl_runs r WHERE r.crawl_id = c.id) DESC NULLS LAST,
             c.id DESC
    LIMIT 1
    """
)
_LATEST_RUN = text("SELECT max(id) FROM crawl_runs WHERE crawl_id = :crawl_id")
_RUN_IN_CRAWL = text("SELECT 1 FROM crawl_runs WHERE id = :run AND crawl_id = :crawl_id")

# While a run is running, crawl_runs.pages/errors are not written yet: count them as the
# end of the run will (one definition of each, in runs.py).
_LIST_RUNS = text(
    f"""
    SELECT r.id, c.name AS crawl, r.status, r.started_at, r.finished_at,
           CASE WHEN r.status = 'running' THEN {pages_of_run("r.id")}
           ELSE r.pages END AS pages,
           CASE WHEN r.status = 'running' THEN {errors_of_run("r.id")}
           ELSE r.errors END AS errors,
           ch.new, ch.changed, ch.unchanged, ch.gone
    FROM crawl_runs r
    JOIN crawls c ON c.id = r.crawl_id
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE rc.outcome = 'new') AS new,
               count(*) FILTER (WHERE rc.outcome = 'changed') AS changed,
               count(*) FILTER (WHERE rc.outcome = 'unchanged') AS unchanged,
               count(*) FILTER (WHERE rc.outcome = 'gone') AS gone
        FROM run_changes rc WHERE rc.run_id = r.id
    ) ch
    WHERE CAST(:crawl_id AS bigint) IS NULL OR r.crawl_id = :crawl_id
    ORDER BY r.id
    """
)

_RUN_CHANGES = text("SELECT outcome, url FROM run_changes WHERE run_id = :run ORDER BY url")


async def _find_crawl(session: AsyncSession, name: str) -> tuple[int, str]:
    row = (await session.execute(_FIND_CRAWL, {"name": name})).first()
    if row is None:
        raise ConfigError(f"there is no crawl named {name!r}")
    return int(row.id), str(row.name)


async def _resolve(session: AsyncSession, crawl_name: str | None, run_id: int | None) -> Target:
    if crawl_name is not None:
        crawl_id, name = await _find_crawl(session, crawl_name)
    elif run_id is not None:
        row = (await session.execute(_CRAWL_OF_RUN, {"run": run_id})).first()
        if row is None:
            raise ConfigError(f"there is no run {run_id}")
        crawl_id, name = int(row.id), str(row.name)
    else:
        row = (await session.execute(_DEFAULT_CRAWL)).first()
        if row is None:
            raise ConfigError("there is no crawl in this database yet")
        crawl_id, name = int(row.id), str(row.name)
    if run_id is None:
        latest = (await session.execute(_LATEST_RUN, {"crawl_id": crawl_id})).scalar()
        return Target(crawl_id, name, None if latest is None else int(latest))
    found = (await session.execute(_RUN_IN_CRAWL, {"run": run_id, "crawl_id": crawl_id})).first()
    if found is None:
        raise ConfigError(f"crawl {name!r} has no run {run_id}")
    return Target(crawl_id, name, run_id)


async def resolve(db: Database, crawl_name: str | None, run_id: int | None) -> Target:
    """The crawl and run a report is about (see the module docstring for the defaults)."""
    async with db.transaction() as session:
        return await _resolve(session, crawl_name, run_id)


async def list_runs(db: Database, crawl_name: str | None = None) -> list[RunRow]:
    """The runs of the crawl named (of every crawl when None), oldest first."""
    async with db.transaction() as session:
        crawl_id = None if crawl_name is None else (await _find_crawl(session, crawl_name))[0]
        rows = (await session.execute(_LIST_RUNS, {"crawl_id": crawl_id})).all()
    return [
        RunRow(
            id=int(r.id),
            crawl=str(r.crawl),
            status=str(r.status),
            started_at=r.started_at,
            finished_at=r.finished_at,
            pages=int(r.pages),
            errors=int(r.errors),
            new=int(r.new),
            changed=int(r.changed),
            unchanged=int(r.unchanged),
            gone=int(r.gone),
        )
        for r in rows
    ]


async def changes(
    db: Database, crawl_name: str | None = None, run_id: int | None = None
) -> Changes:
    """The pages a run (default: the crawl's latest) found new, changed, unchanged and gone."""
    async with db.transaction() as session:
        target = await _resolve(session, crawl_name, run_id)
        if target.run_id is None:
            raise ConfigError(f"crawl {target.crawl!r} has no runs yet")
        rows = (await session.execute(_RUN_CHANGES, {"run": target.run_id})).all()
    urls: dict[str, list[str]] = {outcome: [] for outcome in OUTCOMES}
    for row in rows:
        urls.setdefault(row.outcome, []).append(row.url)
    return Changes(
        crawl=target.crawl,
        run_id=target.run_id,
        new=tuple(urls["new"]),
        changed=tuple(urls["changed"]),
        unchanged=tuple(urls["unchanged"]),
        gone=tuple(urls["gone"]),
    )


def _export_query(table: str, target: Target) -> Select[*tuple[Any, ...]]:
    """pages and links: the crawl's latest state; fetches: the history of one run."""
    if table == "pages":
        pages = PageRow.__table__
        return select(pages).where(pages.c.crawl_id == target.crawl_id).order_by(pages.c.id)
    if table == "links":
        links = links_view.c
        return (
            select(
                links.page_id,
                links.position,
                PageRow.url.label("page_url"),
                links.target_url,
                links.anchor_text,
                links.nofollow,
            )
            .join(PageRow, PageRow.id == links.page_id)
            .where(PageRow.crawl_id == target.crawl_id)
            .order_by(links.page_id, links.position)
        )
    if table == "fetches":
        fetches = Fetch.__table__
        run = -1 if target.run_id is None else target.run_id
        return select(fetches).where(fetches.c.run_id == run).order_by(fetches.c.id)
    raise ConfigError(f"--table must be one of {', '.join(TABLES)}, not {table!r}")


def columns(table: str) -> list[str]:
    """The column names of an export of `table`, in order (a CSV header needs no row)."""
    return [column.name for column in _export_query(table, Target(0, "", None)).selected_columns]


async def count_rows(
    db: Database, table: str, crawl_name: str | None = None, run_id: int | None = None
) -> int:
    """How many rows `export_rows` with the same arguments yields (for a progress bar)."""
    async with db.transaction() as session:
        query = _export_query(table, await _resolve(session, crawl_name, run_id))
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        return int((await session.execute(counted)).scalar_one())


def _row_bytes(row: Any) -> int:
    """About how much memory a row's values take: their text, plus a little for the rest."""
    return sum(len(v) if isinstance(v, str) else 16 for v in row)


async def export_rows(
    db: Database,
    table: str,
    crawl_name: str | None = None,
    run_id: int | None = None,
    batch: int = 1000,
    batch_bytes: int = EXPORT_BATCH_BYTES,
) -> AsyncGenerator[dict[str, Any], None]:
    """Stream the rows of `table` (pages|links|fetches) as dicts.

    pages and links are the crawl's latest state (`run_id` is checked, not used); fetches are
    those of `run_id`, default the crawl's latest run. A server-side cursor keeps memory
    bounded: each round trip asks for at most `batch` rows and, judged by the rows so far,
    about `batch_bytes` of values, so large pages come a few at a time. The connection is
    held until the iterator is exhausted or closed."""
    async with db.transaction() as session:
        query = _export_query(table, await _resolve(session, crawl_name, run_id))
    size = min(batch, EXPORT_FIRST_ROWS)
    async with db.engine.connect() as conn:
        result = await conn.stream(query)
        try:
            while rows := await result.fetchmany(size):
                per_row = max(1, sum(_row_bytes(row) for row in rows) // len(rows))
                for row in rows:
                    yield dict(row._mapping)
                size = max(1, min(batch, batch_bytes // per_row))
        finally:
            await result.close()
