"""The tenant portal: a link the operator makes in the console opens the console for
that tenant alone, once; a tampered or expired link is refused with a page that says so.
(Named test_portal so it runs after the operator's tests: its last test waits out the
short link made at the start.)"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from playwright.sync_api import Browser, expect

from conftest import (
    BASE,
    DESKTOP,
    SLOW_MS,
    Console,
    Receiver,
    delivered,
    make_endpoint,
    ok,
    send_event,
    unique,
    wait_for,
)


def expect_refused(page: Any) -> None:
    expect(page.get_by_role("alert")).to_contain_text("This link cannot be opened")
    expect(page.get_by_role("navigation")).to_be_empty()
    assert "token=" not in page.url, "the token leaves the address bar before it is used"


def test_a_portal_link_made_in_the_console_opens_only_that_tenants_data_and_only_once(
    console: Console, browser: Browser, receiver: Receiver, tenants: tuple[str, str]
) -> None:
    mine, theirs = tenants
    event_type = unique("console.portal.")
    ep_mine, ep_theirs = (make_endpoint(receiver, "/ok", event_type, tenant_id=t) for t in (mine, theirs))
    send_event(event_type, {"for": mine}, tenant_id=mine)
    send_event(event_type, {"for": theirs}, tenant_id=theirs)
    wait_for("both deliveries", lambda: delivered(ep_mine["id"]) and delivered(ep_theirs["id"]))

    # GIVEN the operator makes a link on the tenant's page
    page = console.sign_in()
    page.get_by_role("link", name="Tenants").click()
    page.get_by_role("link", name=mine).click()
    page.get_by_label("Link lifetime").select_option(label="10 minutes")
    page.get_by_role("button", name="Make a portal link").click()
    link = page.locator("code[data-secret]").inner_text()
    assert link.startswith(f"{BASE}/console#token="), link
    console.shot("tenant-portal-link")

    # WHEN the tenant opens it in a browser of its own
    tenant_view = Console(browser, DESKTOP)
    try:
        tp = tenant_view.page
        tp.goto(link)
        expect(tp.get_by_role("button", name="Sign out")).to_be_visible()
        assert "token=" not in tp.url, "the token leaves the address bar"
        # THEN it sees its own endpoint and deliveries, and no other tenant's
        expect(tp.locator("#who")).to_contain_text(f"Tenant {mine} · portal until")
        expect(tp.get_by_role("navigation").get_by_role("link", name="Tenants")).to_have_count(0)
        tenant_view.go("#/endpoints")
        expect(tp.get_by_role("link", name=ep_mine["name"])).to_be_visible()
        expect(tp.get_by_text(ep_theirs["name"])).to_have_count(0)
        tenant_view.go("#/deliveries")
        expect(tp.locator("tbody tr")).to_have_count(1, timeout=SLOW_MS)
        expect(tp.locator("tbody tr")).to_contain_text(ep_mine["name"])
        tp.locator("tbody tr").get_by_role("link").first.click()
        tp.get_by_role("link", name="Its event").click()
        expect(tp.locator("pre")).to_contain_text(f'"for": "{mine}"')
        tenant_view.go(f"#/endpoints/{ep_theirs['id']}")
        expect(tp.get_by_role("alert")).to_contain_text("404")
        # The operator's pages are not routed for it.
        tenant_view.go(f"#/tenants/{theirs}")
        expect(tp.get_by_role("heading", name="Not found")).to_be_visible()
        # It can manage its endpoint: send a test from its page.
        tenant_view.go(f"#/endpoints/{ep_mine['id']}")
        tp.get_by_role("button", name="Send a test").click()
        expect(tp.get_by_role("status").filter(has_text="HTTP 200")).to_be_visible(timeout=SLOW_MS)
        tenant_view.shot("portal-endpoint")
    finally:
        problems = tenant_view.close()
    assert not problems, problems

    # AND the same link, opened again, is refused
    again = Console(browser, DESKTOP)
    try:
        again.page.goto(link)
        expect_refused(again.page)
    finally:
        problems = again.close()
    assert not problems, problems


def test_a_tampered_link_is_refused(console: Console, tenants: tuple[str, str]) -> None:
    made = ok("POST", f"/v1/tenants/{tenants[0]}/portal-links", {"expires_in": 600})
    path = made["path"]
    tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
    console.page.goto(f"{BASE}{tampered}")
    expect_refused(console.page)
    console.shot("portal-refused")


def test_an_expired_link_is_refused(console: Console, short_link: dict[str, Any]) -> None:
    # The link was made at the start of the run with 60 s to live; this test runs last,
    # and waits out what is left of its minute (a clock, not a condition to poll).
    expires = datetime.fromisoformat(short_link["expires_at"].replace("Z", "+00:00")).timestamp()
    left = expires - time.time() + 1
    if left > 0:
        time.sleep(left)
    console.page.goto(f"{BASE}{short_link['path']}")
    expect_refused(console.page)
