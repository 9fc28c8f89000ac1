"""The HTML report of a crawl (`crawler report`): records in, one self-contained file out.

`data` holds the frozen records the db layer fills (`crawler.db.report_queries`); `charts`
draws them with matplotlib as inline SVG; `render` lays them out with Jinja2 templates. It
reads nothing but its own templates and writes nothing: the CLI writes the file. matplotlib
and Jinja2 are the `report` extra, so `require()` is the one place that says how to install
them.
"""

from __future__ import annotations

from crawler.errors import ConfigError

INSTALL_HINT = "crawler report needs the report extra: pip install 'crawler[report]'"


def require() -> None:
    """Raise ConfigError (one line, exit 2) unless matplotlib and Jinja2 can be imported."""
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
