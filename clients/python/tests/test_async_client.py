"""The asynchronous client: the same contract as the sync one, awaited."""

from __future__ import annotations

import httpx
import pytest
from _support import API_KEY, BAD_TENANT_IDS, TENANT_KEY, TENANT_KEY_SECRET, FakeHookline, Reply, problem

from hookline import AsyncHookline, AuthenticationError, Event, HooklineConnectionError, ValidationError


async def test_send_and_retry_keep_the_id_over_a_real_socket(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(503, problem(503, "Temporarily unavailable", "later")), Reply(drop=True))
    async with AsyncHookline(hookline_server.url, API_KEY, backoff=0.01) as hl:
        event_id = await hl.send("agent_invocation_started", {"run_id": "r"})
    assert [r.body["id"] for r in hookline_server.requests] == [event_id] * 3
    assert hookline_server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_retry_after_then_success() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.05"}), httpx.Response(202, json={"id": "s"})])
    seen: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return next(answers)

    async with AsyncHookline("http://hookline.test", API_KEY, transport=httpx.MockTransport(handle)) as hl:
        assert await hl.send("a", {}) == "s"
    assert len(seen) == 2 and seen[0] == seen[1]


async def test_errors_are_typed_and_not_retried() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.url.path.endswith("/batch"):
            return httpx.Response(422, json=problem(422, "The request is not valid", "no event in the batch is valid",
                                                    request_id="r-9"))
        return httpx.Response(401, json=problem(401, "Missing or invalid API key", "send a valid key"))

    async with AsyncHookline("http://hookline.test", API_KEY, transport=httpx.MockTransport(handle)) as hl:
        with pytest.raises(AuthenticationError):
            await hl.send("a", {})
        with pytest.raises(ValidationError) as info:
            await hl.send_batch([Event("a", 1)])
    assert info.value.request_id == "r-9"
    assert len(calls) == 2


async def test_batch(hookline_server: FakeHookline) -> None:
    async with AsyncHookline(hookline_server.url, API_KEY) as hl:
        result = await hl.send_batch([{"event_type": "a", "data": i} for i in range(3)])
    assert result.ok and result.accepted == 3 and len(result.accepted_ids) == 3


async def test_connection_error_after_retries(closed_port: int) -> None:
    hl = AsyncHookline(f"http://127.0.0.1:{closed_port}", API_KEY, max_retries=1, backoff=0.01)
    try:
        with pytest.raises(HooklineConnectionError) as info:
            await hl.send("a", {})
        assert info.value.attempts == 2
        assert API_KEY not in repr(hl) and API_KEY not in str(info.value)
    finally:
        await hl.close()


async def test_a_tenant_is_sent_in_single_and_batch_bodies_and_an_events_own_wins(
    hookline_server: FakeHookline,
) -> None:
    async with AsyncHookline(hookline_server.url, TENANT_KEY, tenant_id="acme") as hl:
        await hl.send("a", {})
        await hl.send("a", {}, tenant_id="globex")
        await hl.send_batch([Event("a", 1), Event("a", 2, tenant_id="initech"), {"event_type": "a", "data": 3}])
        assert TENANT_KEY_SECRET not in repr(hl) and "tenant_id='acme'" in repr(hl)
    first, second, batch = hookline_server.requests
    assert first.headers["authorization"] == f"Bearer {TENANT_KEY}"
    assert (first.body["tenant_id"], second.body["tenant_id"]) == ("acme", "globex")
    assert [e["tenant_id"] for e in batch.body["events"]] == ["acme", "initech", "acme"]


async def test_no_tenant_leaves_the_body_as_it_was(hookline_server: FakeHookline) -> None:
    async with AsyncHookline(hookline_server.url, API_KEY) as hl:
        await hl.send("a", {})
        await hl.send_batch([Event("a", 1)])
    single, batch = hookline_server.requests
    assert all("tenant_id" not in e for e in [single.body, *batch.body["events"]])


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
async def test_a_bad_tenant_id_is_a_value_error(tenant_id) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        AsyncHookline("http://hookline.test", API_KEY, tenant_id=tenant_id)
    transport = httpx.MockTransport(lambda r: httpx.Response(202, json={}))
    async with AsyncHookline("http://hookline.test", API_KEY, transport=transport) as hl:
        with pytest.raises(ValueError, match="tenant_id"):
            await hl.send("a", {}, tenant_id=tenant_id)


async def test_the_async_client_sends_a_ttl_an_expiry_and_a_collapse_key_and_checks_them(
    hookline_server: FakeHookline,
) -> None:
    async with AsyncHookline(hookline_server.url, API_KEY) as hl:
        await hl.send("agent_processing", {"pct": 10}, ttl_seconds=300, collapse_key="run-1:progress")
        await hl.send_batch([
            Event("agent_processing", {"pct": 20}, expires_at="2026-07-01T12:00:00Z", collapse_key="run-1:progress"),
            Event("node_started", {}),
        ])
        with pytest.raises(ValueError, match="not both"):
            await hl.send("a", {}, ttl_seconds=5, expires_at="2026-07-01T12:00:00Z")
        with pytest.raises(ValueError, match="control characters"):
            await hl.send_batch([{"event_type": "a", "data": 1, "collapse_key": "a\nb"}])
    single, batch = hookline_server.requests  # the refused ones were never sent
    assert (single.body["ttl_seconds"], single.body["collapse_key"]) == (300, "run-1:progress")
    first, plain = batch.body["events"]
    assert (first["expires_at"], first["collapse_key"]) == ("2026-07-01T12:00:00Z", "run-1:progress")
    assert set(plain) == {"id", "event_type", "data"}
