"""The operator's console: sign in with the admin key, make and manage endpoints, watch
deliveries, retry one; every value from outside shown as text."""

from __future__ import annotations

from playwright.sync_api import expect

from conftest import (
    ADMIN_KEY,
    BASE,
    SLOW_MS,
    Console,
    Receiver,
    api,
    delivered,
    delivery_in,
    make_endpoint,
    ok,
    send_event,
    unique,
    wait_for,
)


def test_a_wrong_key_is_refused_and_the_page_says_so(console: Console) -> None:
    page = console.open()
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("this key is not accepted")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_an_operator_signs_in_by_keyboard_makes_an_endpoint_and_sees_its_secret_once(
    console: Console, receiver: Receiver
) -> None:
    page = console.sign_in()
    # The key is in this tab's sessionStorage, never in the address.
    assert ADMIN_KEY not in page.url
    page.get_by_role("link", name="Endpoints").click()
    page.get_by_role("link", name="New endpoint").click()
    name = unique("Billing ")
    page.get_by_label("Name").fill(name)
    page.get_by_label("URL").fill(receiver.url("/ok"))
    page.get_by_label("Event types").fill("console.made")
    page.get_by_role("button", name="Create endpoint").click()

    secret = page.locator("code[data-secret]")
    expect(secret).to_contain_text("whsec_")
    value = secret.inner_text()
    console.shot("endpoint-created")

    page.get_by_role("link", name="I have stored it: open the endpoint").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    assert value not in page.content(), "the secret is shown once, at creation"
    expect(page.locator("code[data-secret]")).to_have_count(0)


def test_a_sent_event_appears_in_the_log_turns_delivered_and_shows_its_attempt(
    console: Console, receiver: Receiver
) -> None:
    event_type = unique("console.sent.")
    ep = make_endpoint(receiver, "/ok", event_type)
    page = console.sign_in()
    # GIVEN the log filtered to the endpoint, still empty
    console.go(f"#/deliveries?endpoint_id={ep['id']}")
    expect(page.get_by_text("No deliveries match.")).to_be_visible()
    # WHEN an event is sent
    send_event(event_type, {"run_id": "run-1", "node": "plan"})
    # THEN its delivery appears by itself and turns delivered
    row = page.locator("tbody tr").first
    expect(row.locator(".badge")).to_have_text("delivered", timeout=SLOW_MS)
    console.shot("deliveries")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delivery")
    attempts = page.locator("tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("HTTP 200")
    console.shot("delivery")
    # Its event, with the payload as sent.
    page.get_by_role("link", name="Its event").click()
    expect(page.locator("pre")).to_contain_text('"node": "plan"')
    expect(page.locator("tbody tr")).to_have_count(1)
    console.shot("event")


def test_a_failed_delivery_shows_the_answer_as_text_and_retry_delivers_it(
    console: Console, receiver: Receiver
) -> None:
    event_type = unique("console.failing.")
    ep = make_endpoint(receiver, "/flaky", event_type, max_attempts=1)
    receiver.healthy.clear()
    event_id = send_event(event_type, {"step": 1})
    delivery = wait_for("the delivery to fail", lambda: delivery_in(ep["id"], "failed"))
    assert delivery["event_id"] == event_id
    page = console.sign_in()
    console.go(f"#/deliveries/{delivery['id']}")
    expect(page.locator("dl .badge").first).to_have_text("failed")
    answer = page.locator("tbody tr pre")
    # The receiver's HTML is characters on the page, not elements.
    expect(answer).to_have_text('<b>nope</b><img src=x onerror="window.__pwned=3">')
    expect(page.locator("main b, main img")).to_have_count(0)
    console.shot("delivery-failed")

    # WHEN the receiver is fixed and the operator presses Retry
    receiver.healthy.set()
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_role("status").filter(has_text="Sent to the queue")).to_be_visible()
    # THEN the page follows it to delivered, with the second attempt on top
    expect(page.locator("dl .badge").first).to_have_text("delivered", timeout=SLOW_MS)
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr").first).to_contain_text("HTTP 200")
    assert page.evaluate("window.__pwned") is None
    console.shot("delivery-retried")


def test_an_expired_delivery_says_why_it_ended_and_offers_no_retry(console: Console, receiver: Receiver) -> None:
    # GIVEN an event worth sending for a second only, to a receiver that fails: its
    # retry (5 s on) would come after that, so it ends expired at its first attempt
    event_type = unique("console.expiring.")
    ep = make_endpoint(receiver, "/down", event_type)
    event_id = send_event(event_type, {"pct": 10}, ttl_seconds=1)
    delivery = wait_for("the delivery to expire", lambda: delivery_in(ep["id"], "expired"))
    assert delivery["event_id"] == event_id
    page = console.sign_in()
    console.go(f"#/deliveries?status=expired&endpoint_id={ep['id']}")
    expect(page.locator("tbody tr .badge")).to_have_text("expired")
    page.locator("tbody tr").get_by_role("link").first.click()
    expect(page.locator("dl")).to_contain_text("Why it ended")
    expect(page.locator("dl")).to_contain_text("expired at")
    expect(page.get_by_role("button", name="Retry now")).to_have_count(0)
    page.get_by_role("link", name="Its event").click()
    expect(page.locator("dl")).to_contain_text("Expires")


def test_markup_in_a_payload_or_a_name_renders_as_text(console: Console, receiver: Receiver) -> None:
    event_type = unique("console.markup.")
    hostile = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    ep = make_endpoint(receiver, "/ok", event_type, name=hostile)
    event_id = send_event(event_type, {"html": hostile})
    page = console.sign_in()
    console.go(f"#/events/{event_id}")
    expect(page.locator("pre")).to_contain_text(hostile.replace('"', '\\"'))
    console.go("#/endpoints")
    expect(page.get_by_role("link", name=hostile)).to_be_visible()
    console.go(f"#/endpoints/{ep['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(hostile)
    expect(page.locator("main img, main script")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None


def test_deleting_an_endpoint_asks_first_and_cancel_keeps_it(console: Console, receiver: Receiver) -> None:
    ep = make_endpoint(receiver, "/ok", unique("console.delete."))
    page = console.sign_in()
    console.go(f"#/endpoints/{ep['id']}")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Delete endpoint {ep['name']}?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert api("GET", f"/v1/endpoints/{ep['id']}")[0] == 200

    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete endpoint").click()
    expect(page).to_have_url(f"{BASE}/console#/endpoints")
    assert api("GET", f"/v1/endpoints/{ep['id']}")[0] == 404


def test_disabling_takes_a_reason_and_enabling_undoes_it(console: Console, receiver: Receiver) -> None:
    ep = make_endpoint(receiver, "/ok", unique("console.disable."))
    page = console.sign_in()
    console.go(f"#/endpoints/{ep['id']}")
    page.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason (shown with the endpoint)").fill("receiver moving hosts")
    dialog.get_by_role("button", name="Disable").click()
    expect(page.locator("dl")).to_contain_text("disabled: receiver moving hosts")
    assert ok("GET", f"/v1/endpoints/{ep['id']}")["status"] == "disabled"
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("button", name="Disable")).to_be_visible()
    assert ok("GET", f"/v1/endpoints/{ep['id']}")["status"] == "active"


def test_the_overview_charts_the_last_day_and_lists_failing_endpoints_first(
    console: Console, receiver: Receiver
) -> None:
    event_type = unique("console.overview.")
    ep = make_endpoint(receiver, "/ok", event_type)
    send_event(event_type, {"n": 1})
    wait_for("the delivery", lambda: delivered(ep["id"]))
    page = console.sign_in()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("figure.chart svg")).to_have_count(2)
    expect(page.locator(".figure .n").first).not_to_have_text("0")
    expect(page.get_by_role("link", name=ep["name"])).to_be_visible()
    console.shot("overview")


def test_the_console_fits_a_phone_screen(phone: Console, receiver: Receiver) -> None:
    ep = make_endpoint(receiver, "/ok", unique("console.phone."))
    page = phone.sign_in()
    for fragment in ["#/", "#/deliveries", "#/endpoints", f"#/endpoints/{ep['id']}", "#/tenants"]:
        phone.go(fragment)
        expect(page.get_by_role("status").filter(has_text="…")).to_have_count(0)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{fragment} is {overflow} px wider than a phone"
    phone.go("#/deliveries")
    expect(page.get_by_role("button", name="Apply")).to_be_visible()
    phone.shot("phone-deliveries")


def test_every_step_of_making_an_endpoint_is_reachable_by_keyboard(console: Console, receiver: Receiver) -> None:
    page = console.sign_in()

    def tab_to(name: str) -> None:
        """Presses Tab until the focus is on the control named `name` (at most 40 times)."""
        for _ in range(40):
            page.keyboard.press("Tab")
            focused = page.evaluate("(document.activeElement && (document.activeElement.innerText || document.activeElement.getAttribute('aria-label') || '')).trim()")
            if focused == name:
                return
        raise AssertionError(f"Tab never reached {name!r}")

    tab_to("Endpoints")
    page.keyboard.press("Enter")
    # Loaded (the list replaces the loading state, and with it what had the focus).
    expect(page.get_by_role("link", name="New endpoint")).to_be_visible()
    tab_to("New endpoint")
    page.keyboard.press("Enter")
    # The form takes the focus on its first field; the rest by Tab and typing.
    expect(page.get_by_label("Name")).to_be_focused()
    name = unique("keyboard-")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(receiver.url("/ok"))
    page.keyboard.press("Enter")
    expect(page.locator("code[data-secret]")).to_contain_text("whsec_")
    tab_to("Copy")
    tab_to("I have stored it: open the endpoint")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def test_a_refused_request_shows_what_the_api_said_and_where(console: Console) -> None:
    # GIVEN a new endpoint whose URL the API refuses (a private address, outside the
    # local stack's allowed loopback)
    page = console.sign_in()
    console.go("#/endpoints/new")
    page.get_by_label("Name").fill(unique("refused-"))
    page.get_by_label("URL").fill("http://10.0.0.1/hook")
    page.get_by_role("button", name="Create endpoint").click()
    # THEN the error names the status, the detail and the field, and the form stays
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Error 422")
    expect(alert).to_contain_text("/url")
    expect(page.get_by_role("button", name="Create endpoint")).to_be_visible()
