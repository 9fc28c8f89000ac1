"""crawler: an async web crawler that stores what it finds in PostgreSQL."""

__version__ = "0.1.0"
