"""The console in a real browser (headless Chromium from Debian, driven by Playwright)
against a fresh local stack:

    infra/with-stack.sh console .tools/console/bin/pytest tests/console -q

The stack gives HOOKLINE_URL and the keys; receivers listen on 127.0.0.1. Screenshots
of the main views go to target/console/.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

BASE = os.environ.get("HOOKLINE_URL", "")
ADMIN_KEY = os.environ.get("HOOKLINE_ADMIN_KEY", "")
INGEST_KEY = os.environ.get("HOOKLINE_INGEST_KEY", "")
CHROMIUM = os.environ.get("HOOKLINE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "target" / "console"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# How long the page may take to show a change that goes through the queue.
SLOW_MS = 30_000
# How long a page may take to show anything: the local stack runs each function under
# `cargo lambda watch`, where one left idle a while starts again on its next request.
expect.set_options(timeout=15_000)


def pytest_configure(config: pytest.Config) -> None:
    if not BASE or not ADMIN_KEY or not INGEST_KEY:
        raise pytest.UsageError("needs a local stack: run through infra/with-stack.sh (make console)")


def api(method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> tuple[int, Any]:
    """One call to the API; (status, parsed body)."""
    req = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def ok(method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> Any:
    status, out = api(method, path, body, key)
    assert 200 <= status < 300, f"{method} {path}: {status} {out}"
    return out


def send_event(event_type: str, data: Any, **fields: Any) -> str:
    """Sends an event with the ingest key (`fields`: tenant_id, ttl_seconds, …): its id."""
    return ok("POST", "/v1/events", {"event_type": event_type, "data": data, **fields}, key=INGEST_KEY)["id"]


def delivery_in(endpoint_id: str, status: str) -> dict[str, Any] | None:
    """One of the endpoint's deliveries with this status, if there is one."""
    page = ok("GET", f"/v1/deliveries?endpoint_id={endpoint_id}")
    return next((d for d in page["data"] if d["status"] == status), None)


def delivered(endpoint_id: str) -> bool:
    """Whether one of the endpoint's deliveries is delivered."""
    return delivery_in(endpoint_id, "delivered") is not None


def wait_for(what: str, check: Any, seconds: float = SLOW_MS / 1000) -> Any:
    """Polls `check` until it returns something truthy (the API, not the page)."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Receiver:
    """A webhook receiver on 127.0.0.1: 200 on /ok; on /flaky 500 with an HTML body
    until `healthy` is set; on any other path, 500 always."""

    def __init__(self) -> None:
        self.healthy = threading.Event()
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.hits += 1
                good = self.path == "/ok" or (self.path == "/flaky" and outer.healthy.is_set())
                body = b"" if good else b"<b>nope</b><img src=x onerror=\"window.__pwned=3\">"
                self.send_response(200 if good else 500)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_endpoint(receiver: Receiver, path: str, event_type: str, **extra: Any) -> dict[str, Any]:
    """An endpoint on `receiver`'s `path` for one event type (`extra`: tenant_id, …)."""
    body = {"name": unique("ep-"), "url": receiver.url(path), "event_types": [event_type], **extra}
    return ok("POST", "/v1/endpoints", body)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # The Debian package, never a download; no sandbox in a container without user namespaces.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Console:
    """A browser tab on the console, failing the test on any script error or CSP report."""

    def __init__(self, browser: Browser, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.context.set_default_timeout(15_000)
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        # A 4xx the page asked for is one it shows; a 5xx or a request that failed is not.
        self.page.on(
            "response",
            lambda r: r.status >= 500
            and self.problems.append(
                f"{r.status} from {r.request.method} {r.url} ({r.headers.get('content-type')}, "
                f"request id {r.headers.get('x-request-id') or r.headers.get('lambda-runtime-aws-request-id')})"
            ),
        )
        # (A fetch still out when the tab closes is aborted: not a problem.)
        self.page.on(
            "requestfailed",
            lambda r: r.failure != "net::ERR_ABORTED"
            and self.problems.append(f"request failed: {r.method} {r.url}: {r.failure}"),
        )

    def open(self, fragment: str = "") -> Page:
        self.page.goto(f"{BASE}/console{fragment}")
        return self.page

    def sign_in(self, key: str = ADMIN_KEY) -> Page:
        """By keyboard, as a person would: the key field has the focus; Enter submits."""
        page = self.open()
        page.get_by_label("API key").wait_for()
        page.keyboard.type(key)
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Sign out").wait_for()
        return page

    def go(self, fragment: str) -> Page:
        self.page.evaluate("h => { location.hash = h }", fragment)
        return self.page

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> list[str]:
        """Closes the tab; the problems it logged. Chromium also logs every 4xx as a
        "Failed to load resource" console error: those are left out (the page shows
        them), as the responses above catch a 5xx."""
        self.context.close()
        return [p for p in self.problems if "Failed to load resource" not in p]


def tab(browser: Browser, viewport: dict[str, int]) -> Iterator[Console]:
    c = Console(browser, viewport)
    yield c
    # A script error, a CSP violation, a 5xx or a failed request fails the test.
    assert not (problems := c.close()), problems


@pytest.fixture
def console(browser: Browser) -> Iterator[Console]:
    yield from tab(browser, DESKTOP)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Console]:
    yield from tab(browser, PHONE)


@pytest.fixture(scope="session")
def tenants() -> tuple[str, str]:
    """Two tenants of this run."""
    out = []
    for label in ("a", "b"):
        t = unique(f"console-{label}-")
        ok("POST", "/v1/tenants", {"id": t, "name": f"Console {label.upper()}"})
        out.append(t)
    return out[0], out[1]


@pytest.fixture(scope="session", autouse=True)
def short_link(tenants: tuple[str, str]) -> dict[str, Any]:
    """A portal link made before the first test with the shortest life (60 s), for the
    test that sees an expired link refused (it runs last and waits out what is left of
    the minute, if anything)."""
    return ok("POST", f"/v1/tenants/{tenants[0]}/portal-links", {"expires_in": 60})
