"""``GET /``: one self-contained page (page.html) to try the model and score a file in a browser.

The page needs no key to load; it asks for one and calls only the public API with it. Its
Content-Security-Policy allows nothing but this server and inline code, so it works offline and
cannot load anything from elsewhere.
"""

from __future__ import annotations

import functools
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' blob:; "
    "img-src data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
page_router = APIRouter()


@functools.cache
def page_html() -> str:
    return files("sentitune.serving").joinpath("page.html").read_text(encoding="utf-8")


@page_router.get("/", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def page() -> HTMLResponse:
    """The web page: try the model, or score pasted lines or a CSV/JSONL file (needs an API key to call it)."""
    return HTMLResponse(page_html(), headers={"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"})
