"""The crawl database for a command that works on an existing crawl (sql, runs, changes,
export, reparse), opened without the crawl machinery.

- With `--database-url`: that server, its schema migrated to head if behind, then checked
  (`crawler sql` asks for neither: it must work on a damaged schema, to look at it and repair
  it, and answers sooner without them).
- Else the embedded server in the data dir, which must already hold a crawl database: a
  mistyped `--data-dir` is a ConfigError (exit 2), never a new empty database.
- `crawl_database_url` gives just the URL (for `crawler sql`, which needs no engine);
  `open_existing` a `Database` on it. SQLAlchemy is imported only for the latter.
- When this command had to start the embedded server, `on_started` is called (the CLI tells
  the user that `crawler db start` makes repeated commands faster), and the server is stopped
  again on the way out unless `crawler db start` keeps it, or another client is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.config import Settings, normalise_database_url
from crawler.db import embedded
from crawler.db.query import other_clients_at
from crawler.errors import ConfigError

if TYPE_CHECKING:
    from crawler.db.database import Database

APPLICATION_NAME = f"crawler-cli-{os.getpid()}"


def require_crawl_database(folder: Path) -> None:
    """Refuse a data dir that holds no embedded database (a typo, or no crawl yet)."""
    if not (folder / "pgdata" / "PG_VERSION").is_file():
        raise ConfigError(
            f"there is no crawl database in {folder} (check --data-dir / CRAWLER_DATA_DIR, "
            "or run `crawler crawl` first)"
        )


@asynccontextmanager
async def crawl_database_url(
    settings: Settings, *, on_started: Callable[[Path], None] | None = None
) -> AsyncIterator[str]:
    """The URL of the crawl database: `--database-url`, or the embedded server's (started if
    need be, and stopped on the way out as the module docstring says)."""
    if settings.database_url:
        yield settings.database_url
        return
    folder = embedded.data_dir_of(settings)
    require_crawl_database(folder)
    server = await asyncio.to_thread(embedded.start, folder)
    if server.started_here and on_started is not None:
        on_started(folder)
    url = normalise_database_url(server.url)
    try:
        yield url
    finally:
        others = 0
        with contextlib.suppress(Exception):
            others = await other_clients_at(url, APPLICATION_NAME)
        if others == 0 and not embedded.kept_running(server.data_dir):
            await asyncio.to_thread(embedded.stop, server.data_dir)


@asynccontextmanager
async def open_existing(
    settings: Settings,
    *,
    on_started: Callable[[Path], None] | None = None,
    migrate_schema: bool = True,
) -> AsyncIterator[Database]:
    """The crawl database, migrated and checked unless not `migrate_schema` (see the module
    docstring)."""
    from crawler.db.database import Database

    async with crawl_database_url(settings, on_started=on_started) as url:
        db = Database(url, pool_size=2, application_name=APPLICATION_NAME)
        try:
            await db.check()
            if migrate_schema:
                from crawler.db import migrate

                await migrate.upgrade(url)
            yield db
        finally:
            await db.dispose()
