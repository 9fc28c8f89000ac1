"""The database layer: the only package that imports SQLAlchemy or writes SQL.

- database.py   the one door: engine, shared sessionmakers, `translate` (the error contract)
- models.py     the tables (the schema contract)
- migrate.py    Alembic upgrades
- runs.py       crawls, runs and the crawl lock
- frontier.py   claim / lease / renew / release (`PgFrontier`)
- store.py      what the runner records and reads for a task (`PgStore`)
- writer.py     the write path: one writer task, one statement a batch of completed tasks
- batch.py      that batch statement and its parameters
- host_gate.py  per-host slots shared by the processes of a run (`PgHostGate`)
- bodies.py     stored response bodies (--store-body, `crawler reparse`)
- reports.py    the queries behind the report commands
- query.py      ad-hoc SQL for `crawler sql`
- embedded.py   the bundled PostgreSQL server
"""
