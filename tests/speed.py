"""Test crawls at full speed: an explicit delay of 0 between requests to a host.

Unset, the delay is adaptive (crawler.throttle): a host's first request gap is 1 s and
never under 0.5 s after, which would make a 20-page test site take ten seconds. Tests that
are not about pacing ask for `--delay 0`, in process (`fast_settings`) or in a child's
environment (`FAST_ENV`); tests of the adaptive default leave it unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawler.config import Settings
from crawler.config_sources import load_settings

FAST_ENV = {"CRAWLER_DELAY": "0"}


def fast_settings(flags: Mapping[str, Any], **kw: Any) -> Settings:
    """`load_settings` with `delay` 0 unless `flags` give one."""
    return load_settings({"delay": 0, **flags}, **kw)
