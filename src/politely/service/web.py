"""The website side of the service: the snippet `GET /v1/politely.js` and the demo shop.

The snippet and the demo pages are package data (`politely/service/static/`),
read once. The snippet is served with an ETag (a hash of its bytes), answered
304 on a matching `If-None-Match`, gzipped when the browser accepts it, and
cached for a short while, since sites embed one unversioned URL.

The demo shop (`/demo/`) embeds the snippet exactly as a site would. It talks
to the site named `default` (what `politely serve rules` serves), so it is
served only when that site exists: a service whose sites have other names
shows no demo.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

router = APIRouter(tags=["website"])

DEMO_SITE = "default"
SNIPPET_CACHE = "public, max-age=300, stale-while-revalidate=86400"
# The demo's pages: URL path under /demo/ -> file in static/demo/.
DEMO_PAGES = {
    "": "index.html",
    "pricing": "pricing.html",
    "products/lamp": "product.html",
    "cart": "cart.html",
    "checkout/failed": "error.html",
    "demo.css": "demo.css",
    "demo.js": "demo.js",
}
TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str  # a strong ETag of the uncompressed bytes
    media_type: str


@cache
def asset(*parts: str) -> Asset:
    """A file of the package's static folder, read and compressed once."""
    body = resources.files("politely.service").joinpath("static", *parts).read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:20]
    media_type = TYPES[parts[-1].rsplit(".", 1)[-1]]
    return Asset(body, gzip.compress(body, 9, mtime=0), f'"{digest}"', media_type)


def _matches(if_none_match: str | None, etags: tuple[str, ...]) -> bool:
    """Whether an If-None-Match header names one of `etags` (weak comparison, as
    RFC 9110 asks for If-None-Match)."""
    if not if_none_match:
        return False
    given = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in given or not given.isdisjoint(etags)


def _gzip_ok(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _serve(request: Request, file: Asset, cache_control: str) -> Response:
    zipped = _gzip_ok(request)
    etag = file.etag[:-1] + '-gz"' if zipped else file.etag
    headers = {
        "ETag": etag,
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match"), (file.etag, etag)):
        return Response(status_code=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return Response(
        file.gzipped if zipped else file.body, media_type=file.media_type, headers=headers
    )


# A static file, like /docs: not part of the API's schema.
@router.get("/v1/politely.js", include_in_schema=False)
async def snippet(request: Request) -> Response:
    # Cross-origin pages load it with a script tag; CORP lets sites that require it do so.
    response = _serve(request, asset("politely.js"), SNIPPET_CACHE)
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _demo_served(request: Request) -> bool:
    service = getattr(request.app.state, "service", None)
    return service is not None and DEMO_SITE in service.sites


@router.get("/demo", include_in_schema=False)
async def demo_root(request: Request) -> Response:
    if not _demo_served(request):
        return Response(status_code=404)
    return RedirectResponse("/demo/", status_code=308)


@router.get("/demo/{page:path}", include_in_schema=False)
async def demo(request: Request, page: str) -> Response:
    name = DEMO_PAGES.get(page.strip("/") if page.endswith("/") else page)
    if name is None or not _demo_served(request):
        return Response("no such page", status_code=404, media_type="text/plain; charset=utf-8")
    return _serve(request, asset("demo", name), "no-cache")
