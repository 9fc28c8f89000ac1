"""The database layer: the only package that imports SQLAlchemy or writes SQL.

- database.py   the one door: engine, shared sessionmakers, `translate` (the error contract)
- models.py     the tables (the schema contract)
- migrate.py    Alembic upgrades (Alembic imported only when a migration is due)
- schema.py     the check at every open that the head revision's tables and views exist
- access.py     the database of an existing crawl, for read commands (no crawl machinery)
- runs.py       crawls, runs and the crawl lock
- frontier.py   the lease check every task write makes, the open-row count
- host_frontier.py  claims by host readiness, each host booked: slots, starts, pace
                (`PgHostFrontier`), renew, release, reap
- store.py      what the runner records and reads for a task (`PgStore`)
- writer.py     the write path: one writer task, one statement a batch of completed tasks
- batch.py      that batch statement and its parameters
- bodies.py     stored response bodies (--store-body, `crawler reparse`)
- reports.py    the queries behind the report commands
- report_queries.py, report_tables.py  the queries behind `crawler report`
- search.py     full-text search (`crawler search`, `crawler db index`)
- query.py      ad-hoc SQL for `crawler sql` (read-only unless asked to write)
- embedded.py   the bundled PostgreSQL server: start, stop, status
- embedded_access.py  who may connect to it: socket folder, password file, pg_hba.conf
- embedded_runner.py  its binaries, run as which account
- embedded_early.py   its start in a thread while `crawler crawl` imports the crawl's modules
"""
