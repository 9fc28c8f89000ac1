"""The database layer: the only package that imports SQLAlchemy or writes SQL.

- database.py  engine, shared sessionmaker, error translation
- models.py    the tables (the schema contract)
- migrate.py   Alembic upgrades (Alembic imported only when a migration is due)
- schema.py    the check at every open that the head revision's tables and views exist
- access.py    the database of an existing crawl, for read commands (no crawl machinery)
- runs.py      crawls and runs
- frontier.py  claim / lease / release
- store.py     one statement per completed task
- query.py     ad-hoc SQL for `crawler sql` (read-only unless asked to write)
- embedded.py  the bundled PostgreSQL server: start, stop, status
- embedded_access.py  who may connect to it: socket folder, password file, pg_hba.conf
- embedded_runner.py  its binaries, run as which account
"""
