"""`python -m crawler` and the `crawler` command (pyproject's script): crawler.cli's `main`.

The CLI's modules (typer, asyncio, the commands) load with the collector paused and are then
frozen out of its walks, as the crawl's own modules are (crawler.collector).
"""

from crawler import collector

with collector.loading():
    from crawler.cli import main

if __name__ == "__main__":
    main()
