"""Rendering pages that need JavaScript in headless Chromium (`--render never|auto|always`).

- detect.py: does a page's static HTML look client-rendered (pure).
- learn.py: per host, does rendering find more than the static HTML (pure).
- contract.py: the options, the `RequestRules` and `Renderer` seams, `RenderedResult`.
- chromium.py: the browser's executable, flags and private working folder.
- browser.py: `BrowserRenderer`, the browser and its tabs (the only Playwright importer).
- guard.py: the crawl's address guard and robots.txt as the browser's `RequestRules`.
- fetcher.py: `RenderingFetcher`, a fetcher that renders what needs it.
"""
