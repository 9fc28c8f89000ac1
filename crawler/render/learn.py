"""Per-host learning for `--render auto`: render a host's pages only while it pays. Pure.

Each host is in one of three modes:

- `learning` (every host starts here): a page is rendered when the detector says it looks
  client-rendered. Each rendered page is compared with its static HTML (links and visible
  text, `PageFacts`): the browser found *much more* (links above 1.2 x static + 5, or text
  above 1.5 x static + 500 characters), *no more* (no extra link and at most 10% + 100
  characters of extra text), or something in between.
- `render`: after `MORE_TO_RENDER` (2) "much more" results in a row, every HTML page of the
  host is rendered, whatever the detector says (an app's pages can carry some server text).
  `NO_MORE_TO_STATIC` (5) "no more" results in a row send it to `static`.
- `static`: after `NO_MORE_TO_STATIC_LEARNING` (2) "no more" results in a row while learning,
  the host's pages are no longer rendered; one page in `RECHECK_EVERY` (100) that the
  detector still flags is rendered again as a check, and a "much more" result sends the
  host back to `learning`.

This is the idea of Crawlee's adaptive crawler (compare the two results of a page, then
prefer the cheap one per host), with counts instead of probabilities, so a test can say
exactly what happens. The table is bounded: past `max_hosts` the oldest host is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from crawler.render.detect import Decision, PageFacts

__all__ = ["Choice", "Gain", "HostMode", "RenderLearner", "compare"]

MORE_TO_RENDER = 2
NO_MORE_TO_STATIC_LEARNING = 2
NO_MORE_TO_STATIC = 5
RECHECK_EVERY = 100
MAX_HOSTS = 50_000


class HostMode(StrEnum):
    LEARNING = "learning"
    RENDER = "render"
    STATIC = "static"


class Gain(StrEnum):
    """What rendering a page found beyond its static HTML."""

    MUCH_MORE = "much_more"
    SOME = "some"
    NO_MORE = "no_more"


@dataclass(frozen=True, slots=True)
class Choice:
    """Render this page or not; `reason` is the host's mode or the detector's reason."""

    render: bool
    reason: str


@dataclass(slots=True)
class _Host:
    mode: HostMode = HostMode.LEARNING
    more_run: int = 0  # "much more" results in a row
    same_run: int = 0  # "no more" results in a row
    skipped: int = 0  # flagged pages not rendered since the last check (static mode)


def compare(static: PageFacts, rendered: PageFacts) -> Gain:
    """Did the browser find much more, something, or nothing beyond the static HTML?"""
    if rendered.links > static.links * 1.2 + 5 or rendered.text_chars > (
        static.text_chars * 1.5 + 500
    ):
        return Gain.MUCH_MORE
    if rendered.links <= static.links and rendered.text_chars <= static.text_chars * 1.1 + 100:
        return Gain.NO_MORE
    return Gain.SOME


class RenderLearner:
    """The mode of each host, updated from static-versus-rendered comparisons."""

    def __init__(self, *, max_hosts: int = MAX_HOSTS) -> None:
        self._hosts: dict[str, _Host] = {}
        self._max_hosts = max_hosts

    def mode(self, host: str) -> HostMode:
        state = self._hosts.get(host)
        return HostMode.LEARNING if state is None else state.mode

    def choose(self, host: str, detected: Decision) -> Choice:
        """Render this page of `host`, which the detector judged `detected`?"""
        state = self._hosts.get(host)
        mode = HostMode.LEARNING if state is None else state.mode
        if mode is HostMode.RENDER:
            return Choice(True, f"host:{mode}")
        if not detected.render:
            return Choice(False, str(detected.reason))
        if mode is HostMode.LEARNING or state is None:
            return Choice(True, str(detected.reason))
        state.skipped += 1
        if state.skipped >= RECHECK_EVERY:
            state.skipped = 0
            return Choice(True, "host:recheck")
        return Choice(False, f"host:{mode}")

    def update(self, host: str, static: PageFacts, rendered: PageFacts) -> HostMode:
        """Learn from one rendered page of `host`; returns the host's mode after it."""
        state = self._state(host)
        gain = compare(static, rendered)
        if gain is Gain.MUCH_MORE:
            state.more_run += 1
            state.same_run = 0
        elif gain is Gain.NO_MORE:
            state.same_run += 1
            state.more_run = 0
        else:
            state.more_run = state.same_run = 0
        if state.mode is HostMode.STATIC:
            if gain is Gain.MUCH_MORE:
                state.mode, state.more_run = HostMode.LEARNING, 1
        elif state.more_run >= MORE_TO_RENDER:
            state.mode = HostMode.RENDER
        elif state.same_run >= (
            NO_MORE_TO_STATIC if state.mode is HostMode.RENDER else NO_MORE_TO_STATIC_LEARNING
        ):
            state.mode, state.skipped = HostMode.STATIC, 0
        return state.mode

    def _state(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= self._max_hosts:
                del self._hosts[next(iter(self._hosts))]
            state = self._hosts[host] = _Host()
        return state
