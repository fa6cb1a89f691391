"""The synchronous client against a real HTTP server on 127.0.0.1 (and MockTransport where
a socket is not the point)."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from _support import (
    API_KEY,
    BAD_TENANT_IDS,
    TENANT_KEY,
    TENANT_KEY_SECRET,
    FakeHookline,
    Reply,
    problem,
)

from hookline import (
    APIError,
    AuthenticationError,
    BatchResult,
    ConfigurationError,
    Event,
    Hookline,
    HooklineConnectionError,
    RateLimitError,
    ServerError,
    ValidationError,
    new_event_id,
)
from hookline.events import format_timestamp, is_valid_event_id


def client_for(server: FakeHookline, **kw) -> Hookline:
    kw.setdefault("backoff", 0.01)
    return Hookline(server.url, API_KEY, **kw)


def test_send_posts_the_event_with_a_client_made_id(hookline_server: FakeHookline) -> None:
    with client_for(hookline_server, source="agent-7") as hl:
        event_id = hl.send("agent_invocation_started", {"run_id": "r-1"})
    [req] = hookline_server.requests
    assert req.path == "/v1/events"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["content-type"] == "application/json"
    assert req.body["event_type"] == "agent_invocation_started"
    assert req.body["data"] == {"run_id": "r-1"}
    assert req.body["source"] == "agent-7"
    assert set(req.body) == {"id", "event_type", "data", "source"}  # no unknown fields (422)
    assert event_id == req.body["id"]
    assert event_id.startswith("evt_") and is_valid_event_id(event_id)


def test_send_keeps_the_callers_id_timestamp_and_source(hookline_server: FakeHookline) -> None:
    ts = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=timezone.utc)
    with client_for(hookline_server, source="default") as hl:
        assert hl.send("node_completed", [1, 2], id="run-1:node:a", timestamp=ts, source="mine") == "run-1:node:a"
    body = hookline_server.requests[0].body
    assert body == {
        "id": "run-1:node:a",
        "event_type": "node_completed",
        "data": [1, 2],
        "source": "mine",
        "timestamp": "2026-01-31T12:00:00.123Z",
    }


def test_the_same_id_is_sent_again_after_a_503(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(503, problem(503, "Temporarily unavailable", "retry with the same event id")))
    with client_for(hookline_server) as hl:
        event_id = hl.send("tool_failed", {"x": 1})
    first, second = hookline_server.requests
    assert first.body == second.body
    assert first.body["id"] == event_id


def test_the_same_id_is_sent_again_after_a_dropped_connection(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(drop=True), Reply(drop=True))
    with client_for(hookline_server, max_retries=3) as hl:
        event_id = hl.send("tool_failed", {"x": 1})
    ids = [r.body["id"] for r in hookline_server.requests]
    assert ids == [event_id] * 3


def test_the_same_id_is_sent_again_after_a_timeout(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(delay=0.6))
    with client_for(hookline_server, timeout=0.2) as hl:
        event_id = hl.send("tool_failed", {"x": 1})
    assert [r.body["id"] for r in hookline_server.requests] == [event_id, event_id]


def test_retry_after_is_honoured(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(429, {"message": "Too Many Requests"}, headers={"Retry-After": "1"}))
    with client_for(hookline_server, backoff=0.001) as hl:
        hl.send("node_started", {})
    first, second = hookline_server.requests
    assert second.at - first.at >= 0.9
    assert first.body["id"] == second.body["id"]


def test_retry_after_is_capped_and_backoff_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("hookline.client.time.sleep", waits.append)
    answers = iter([
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(503),
        httpx.Response(502),
        httpx.Response(202, json={"id": "x"}),
    ])
    transport = httpx.MockTransport(lambda request: next(answers))
    with Hookline("http://hookline.test", API_KEY, transport=transport, backoff=1.0) as hl:
        hl.send("a", {})
    assert waits[0] == 30.0  # an hour is cut to 30 s
    assert 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0  # backoff * 2^n with jitter in [0.5, 1]


def test_422_raises_validation_error_with_field_errors_and_request_id(hookline_server: FakeHookline) -> None:
    body = problem(
        422, "The request is not valid", "the event is not valid",
        errors=[{"pointer": "/event_type", "detail": "must be dot-separated segments"}],
        request_id="req-42",
    )
    hookline_server.then(Reply(422, body))
    with client_for(hookline_server) as hl, pytest.raises(ValidationError) as info:
        hl.send("bad type", {})
    err = info.value
    assert err.status == 422
    assert err.title == "The request is not valid"
    assert err.detail == "the event is not valid"
    assert err.type == "urn:hookline:problem:the-request-is-not-valid"
    assert [(e.pointer, e.detail) for e in err.errors] == [("/event_type", "must be dot-separated segments")]
    assert err.request_id == "req-42"
    assert "req-42" in str(err) and "/event_type" in str(err)
    assert len(hookline_server.requests) == 1  # never retried


def test_request_id_falls_back_to_the_api_gateway_header(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(415, problem(415, "Unsupported media type", "send JSON"),
                               headers={"apigw-requestid": "Abc123="}))
    with client_for(hookline_server) as hl, pytest.raises(ValidationError) as info:
        hl.send("a", {})
    assert info.value.request_id == "Abc123="


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_raise_authentication_error(hookline_server: FakeHookline, status: int) -> None:
    hookline_server.then(Reply(status, problem(status, "Missing or invalid API key", "send a valid key")))
    with client_for(hookline_server) as hl, pytest.raises(AuthenticationError) as info:
        hl.send("a", {})
    assert info.value.status == status
    assert len(hookline_server.requests) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, ValidationError), (404, APIError), (409, APIError), (413, ValidationError), (415, ValidationError)],
)
def test_other_4xx_are_never_retried(hookline_server: FakeHookline, status: int, cls: type) -> None:
    hookline_server.then(Reply(status, problem(status, "Nope", "no")))
    with client_for(hookline_server, max_retries=5) as hl, pytest.raises(cls) as info:
        hl.send("a", {})
    assert type(info.value) is cls
    assert info.value.retryable is False
    assert len(hookline_server.requests) == 1


def test_5xx_and_429_give_up_after_max_retries(hookline_server: FakeHookline) -> None:
    hookline_server.then(*[Reply(503, problem(503, "Temporarily unavailable", "later"))] * 3)
    with client_for(hookline_server, max_retries=2) as hl, pytest.raises(ServerError) as info:
        hl.send("a", {})
    assert info.value.attempts == 3 and info.value.retryable
    assert len(hookline_server.requests) == 3

    hookline_server.then(*[Reply(429, {"message": "Too Many Requests"})] * 2)
    with client_for(hookline_server, max_retries=1) as hl, pytest.raises(RateLimitError) as info2:
        hl.send("a", {})
    assert info2.value.detail == "Too Many Requests"


def test_a_server_that_is_down_raises_connection_error(closed_port: int) -> None:
    with Hookline(f"http://127.0.0.1:{closed_port}", API_KEY, max_retries=2, backoff=0.01) as hl:
        with pytest.raises(HooklineConnectionError) as info:
            hl.send("a", {})
    assert info.value.attempts == 3
    assert "ConnectError" in str(info.value)


def test_send_batch_returns_per_event_results(hookline_server: FakeHookline) -> None:
    answer = {
        "accepted": 1, "rejected": 1, "failed": 1,
        "results": [
            {"index": 0, "id": "a-1", "status": "accepted"},
            {"index": 1, "status": "rejected", "errors": [{"pointer": "/events/1/event_type", "detail": "reserved"}]},
            {"index": 2, "id": "c-3", "status": "failed", "retryable": True},
        ],
    }
    hookline_server.then(Reply(202, answer))
    event = Event("tool_completed", {"n": 3}, id="c-3")
    with client_for(hookline_server) as hl:
        result = hl.send_batch([
            {"event_type": "node_started", "data": {}, "id": "a-1"},
            {"event_type": "hookline.x", "data": {}},
            event,
        ])
    assert isinstance(result, BatchResult)
    assert (result.accepted, result.rejected, result.failed, result.ok) == (1, 1, 1, False)
    sent = hookline_server.requests[0].body["events"]
    assert hookline_server.requests[0].path == "/v1/events/batch"
    assert [e["id"] for e in sent][::2] == ["a-1", "c-3"] and sent[1]["id"].startswith("evt_")
    # The rejected event's id (left out by the server) is the one the client made.
    assert result.results[1].id == sent[1]["id"]
    assert result.results[1].errors[0].pointer == "/events/1/event_type"
    assert [r.id for r in result.retryable] == ["c-3"]
    assert result.accepted_ids == ["a-1"]


def test_send_batch_all_accepted_and_ids_made_before_the_first_try(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(drop=True))
    events = [Event("node_started", {"i": i}) for i in range(100)]
    with client_for(hookline_server) as hl:
        result = hl.send_batch(events)
    assert result.ok and result.accepted == 100
    first, second = hookline_server.requests
    assert first.body == second.body
    assert [e.id for e in events] == result.accepted_ids


def test_send_batch_refuses_an_empty_or_too_large_batch() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(500))
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        with pytest.raises(ValueError):
            hl.send_batch([])
        with pytest.raises(ValueError):
            hl.send_batch([{"event_type": "a", "data": 1}] * 101)
        with pytest.raises(ValueError):
            hl.send_batch([{"event_type": "a", "data": 1, "extra": 2}])


def test_a_batch_with_no_valid_event_raises(hookline_server: FakeHookline) -> None:
    hookline_server.then(Reply(422, problem(422, "The request is not valid", "no event in the batch is valid",
                                            errors=[{"pointer": "/events/0/data", "detail": "is required"}])))
    with client_for(hookline_server) as hl, pytest.raises(ValidationError) as info:
        hl.send_batch([{"event_type": "a", "data": None}])
    assert info.value.errors[0].pointer == "/events/0/data"


def test_configuration_comes_from_the_environment(hookline_server: FakeHookline, monkeypatch) -> None:
    monkeypatch.setenv("HOOKLINE_URL", hookline_server.url + "/")
    monkeypatch.setenv("HOOKLINE_API_KEY", API_KEY)
    with Hookline() as hl:
        assert hl.base_url == hookline_server.url
        hl.send("a", {})
    assert hookline_server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_missing_configuration_is_a_clear_error(monkeypatch) -> None:
    with pytest.raises(ConfigurationError, match="HOOKLINE_URL"):
        Hookline(api_key=API_KEY)
    with pytest.raises(ConfigurationError, match="HOOKLINE_API_KEY"):
        Hookline("http://127.0.0.1:9")
    monkeypatch.setenv("HOOKLINE_URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="HOOKLINE_API_KEY"):
        Hookline()


def test_the_key_is_never_in_reprs_errors_or_logs(
    hookline_server: FakeHookline, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hookline_server.then(
        Reply(503, problem(503, "Temporarily unavailable", "later")),
        Reply(401, problem(401, "Missing or invalid API key", "send a valid key")),
        Reply(422, problem(422, "The request is not valid", "bad", errors=[{"pointer": "/id", "detail": "x"}])),
    )
    texts = []
    with client_for(hookline_server) as hl:
        texts.append(repr(hl))
        texts.append(str(hl))
        for _ in range(2):
            with pytest.raises(APIError) as info:
                hl.send("a", {})
            texts += [str(info.value), repr(info.value), repr(info.value.__cause__)]
    with Hookline(f"http://127.0.0.1:{closed_port}", API_KEY, max_retries=1, backoff=0.01) as hl:
        with pytest.raises(HooklineConnectionError) as info2:
            hl.send("a", {})
        texts += [str(info2.value), repr(info2.value), repr(hl._http.headers)]
    texts.append(caplog.text)
    assert "***" in texts[0]
    for text in texts:
        assert API_KEY not in text


def test_event_ids_are_valid_unique_and_time_sortable() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(is_valid_event_id(i) and len(i) == 36 for i in ids)
    time.sleep(0.002)
    assert new_event_id() > ids[-1]


def test_timestamps_are_rfc3339_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert format_timestamp(naive) == "2026-01-02T03:04:05.000Z"
    assert format_timestamp("2026-01-02T03:04:05+02:00") == "2026-01-02T03:04:05+02:00"


def test_non_json_data_fails_before_sending() -> None:
    calls = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(202, json={"id": "x"}))
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        with pytest.raises(ValueError):
            hl.send("a", {"x": float("nan")})
        with pytest.raises(TypeError):
            hl.send("a", {"x": object()})
    assert calls == []
    # and a sent body is compact JSON
    transport = httpx.MockTransport(lambda r: calls.append(json.loads(r.content)) or httpx.Response(202, json={}))
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        assert hl.send("a", {"é": 1}, id="given") == "given"
    assert calls == [{"id": "given", "event_type": "a", "data": {"é": 1}}]


# -- tenants -----------------------------------------------------------------------------------


def test_a_client_with_a_tenant_sends_it_in_single_and_batch_bodies(hookline_server: FakeHookline) -> None:
    with client_for(hookline_server, tenant_id="acme") as hl:
        hl.send("node_started", {"i": 0})
        hl.send_batch([Event("node_started", {"i": 1}), {"event_type": "node_started", "data": {"i": 2}}])
    single, batch = hookline_server.requests
    assert single.body["tenant_id"] == "acme"
    assert set(single.body) == {"id", "event_type", "data", "tenant_id"}
    assert [e["tenant_id"] for e in batch.body["events"]] == ["acme", "acme"]


def test_an_events_own_tenant_wins_over_the_clients(hookline_server: FakeHookline) -> None:
    with client_for(hookline_server, tenant_id="acme") as hl:
        hl.send("node_started", {}, tenant_id="globex")
        hl.send_batch([
            Event("node_started", {}, tenant_id="initech"),
            {"event_type": "node_started", "data": {}, "tenant_id": "umbrella"},
            {"event_type": "node_started", "data": {}},
        ])
    single, batch = hookline_server.requests
    assert single.body["tenant_id"] == "globex"
    assert [e["tenant_id"] for e in batch.body["events"]] == ["initech", "umbrella", "acme"]
    # and without a client tenant, only the events that name one carry it
    with client_for(hookline_server) as hl:
        hl.send_batch([Event("a", 1, tenant_id="initech"), Event("a", 2)])
    assert [e.get("tenant_id") for e in hookline_server.requests[-1].body["events"]] == ["initech", None]


@pytest.mark.parametrize("tenant_id", ["acme", "Acme_Corp-2", "x" * 64, "tnt_" + "0123456789abcdef" * 2, "default"])
def test_valid_tenant_ids_are_accepted(tenant_id: str) -> None:
    calls: list[dict] = []
    transport = httpx.MockTransport(lambda r: calls.append(json.loads(r.content)) or httpx.Response(202, json={}))
    with Hookline("http://hookline.test", API_KEY, transport=transport, tenant_id=tenant_id) as hl:
        hl.send("a", {}, id="e-1")
    assert calls == [{"id": "e-1", "event_type": "a", "data": {}, "tenant_id": tenant_id}]


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
def test_a_bad_tenant_id_is_a_value_error_before_anything_is_sent(tenant_id) -> None:
    calls = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(202, json={}))
    with pytest.raises(ValueError, match="tenant_id"):
        Hookline("http://hookline.test", API_KEY, transport=transport, tenant_id=tenant_id)
    with pytest.raises(ValueError, match="tenant_id"):
        Event("a", 1, tenant_id=tenant_id)
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        with pytest.raises(ValueError, match="tenant_id"):
            hl.send("a", {}, tenant_id=tenant_id)
        with pytest.raises(ValueError, match="tenant_id"):
            hl.send_batch([{"event_type": "a", "data": 1}, {"event_type": "a", "data": 1, "tenant_id": tenant_id}])
        event = Event("a", 1)
        event.tenant_id = tenant_id  # set after it was made
        with pytest.raises(ValueError, match="tenant_id"):
            hl.send_batch([event])
    assert calls == []


def test_a_bad_tenant_id_says_what_a_tenant_id_is() -> None:
    with pytest.raises(ConfigurationError) as info:
        Hookline("http://hookline.test", API_KEY, tenant_id="acme corp")
    assert "'acme corp'" in str(info.value) and "^[A-Za-z0-9_-]{1,64}$" in str(info.value)


def test_a_tenant_key_is_sent_as_is_and_never_shown(
    hookline_server: FakeHookline, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hookline_server.then(
        Reply(503, problem(503, "Temporarily unavailable", "later")),
        Reply(403, problem(403, "Forbidden", "the key's scope does not allow this")),
        Reply(422, problem(422, "The request is not valid", "bad",
                           errors=[{"pointer": "/tenant_id", "detail": "no tenant `globex`"}])),
    )
    texts = []
    with Hookline(hookline_server.url, TENANT_KEY, backoff=0.01, tenant_id="acme") as hl:
        texts += [repr(hl), str(hl), repr(hl._http.headers)]
        for tenant in (None, "globex"):
            with pytest.raises(APIError) as info:
                hl.send("a", {}, tenant_id=tenant)
            texts += [str(info.value), repr(info.value), repr(info.value.__cause__)]
    assert hookline_server.requests[0].headers["authorization"] == f"Bearer {TENANT_KEY}"
    with Hookline(f"http://127.0.0.1:{closed_port}", TENANT_KEY, max_retries=1, backoff=0.01) as hl:
        with pytest.raises(HooklineConnectionError) as info2:
            hl.send("a", {})
        texts += [str(info2.value), repr(info2.value), repr(hl)]
    texts.append(caplog.text)
    assert texts[0] == f"Hookline(base_url={hookline_server.url!r}, api_key='***', tenant_id='acme')"
    for text in texts:
        assert TENANT_KEY_SECRET not in text and "hk_" not in text


# -- expiry and collapsing ---------------------------------------------------------------------


def recording() -> tuple[list[dict], httpx.MockTransport]:
    calls: list[dict] = []
    return calls, httpx.MockTransport(lambda r: calls.append(json.loads(r.content)) or httpx.Response(202, json={}))


def test_an_event_without_expiry_or_collapse_key_serialises_as_before() -> None:
    assert Event("a", 1, id="e-1").to_json() == {"event_type": "a", "data": 1, "id": "e-1"}
    calls, transport = recording()
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        hl.send("a", {}, id="e-1")
        hl.send_batch([Event("a", 1, id="e-2"), {"event_type": "a", "data": 2, "id": "e-3"}])
    assert calls == [
        {"id": "e-1", "event_type": "a", "data": {}},
        {"events": [{"event_type": "a", "data": 1, "id": "e-2"}, {"event_type": "a", "data": 2, "id": "e-3"}]},
    ]


def test_send_and_send_batch_carry_a_ttl_and_a_collapse_key_when_given(hookline_server: FakeHookline) -> None:
    with client_for(hookline_server) as hl:
        hl.send("agent_processing", {"pct": 10}, id="p-1", ttl_seconds=300, collapse_key="run-1:progress")
        hl.send_batch([
            Event("agent_processing", {"pct": 20}, ttl_seconds=60, collapse_key="run-1:progress"),
            {"event_type": "agent_processing", "data": {"pct": 30}, "ttl_seconds": 60, "collapse_key": "run-1:progress"},
            Event("node_started", {}),
        ])
    single, batch = hookline_server.requests
    assert single.body == {
        "id": "p-1", "event_type": "agent_processing", "data": {"pct": 10},
        "ttl_seconds": 300, "collapse_key": "run-1:progress",
    }
    first, second, plain = batch.body["events"]
    assert (first["ttl_seconds"], first["collapse_key"]) == (60, "run-1:progress")
    assert (second["ttl_seconds"], second["collapse_key"]) == (60, "run-1:progress")
    assert set(plain) == {"id", "event_type", "data"}  # no expiry and no key unless given


def test_expires_at_is_sent_in_utc_from_an_aware_datetime_and_as_given_from_a_string() -> None:
    paris = timezone(timedelta(hours=2))
    calls, transport = recording()
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        hl.send("a", {}, id="e-1", expires_at=datetime(2026, 7, 1, 14, 30, 0, 250999, tzinfo=paris))
        hl.send("a", {}, id="e-2", expires_at="2026-07-01T12:30:00+00:00", collapse_key="k")
    assert calls[0]["expires_at"] == "2026-07-01T12:30:00.250Z"
    assert calls[1]["expires_at"] == "2026-07-01T12:30:00+00:00" and calls[1]["collapse_key"] == "k"
    assert "ttl_seconds" not in calls[0] and "ttl_seconds" not in calls[1]


def test_a_naive_expires_at_is_refused_saying_to_give_a_timezone() -> None:
    with pytest.raises(ValueError, match="naive datetime: give it a timezone") as info:
        Event("a", 1, expires_at=datetime(2026, 7, 1, 12, 0))
    assert "RFC 3339" in str(info.value)


BAD_EXPIRY_OR_KEY = [
    ({"ttl_seconds": 60, "expires_at": "2026-07-01T12:00:00Z"}, "not both"),
    ({"ttl_seconds": 0}, "ttl_seconds must be a whole number of seconds from 1 to 1728000"),
    ({"ttl_seconds": -5}, "ttl_seconds"),
    ({"ttl_seconds": 1_728_001}, "ttl_seconds"),
    ({"ttl_seconds": 1.5}, "ttl_seconds"),
    ({"ttl_seconds": 60.0}, "ttl_seconds"),
    ({"ttl_seconds": True}, "ttl_seconds"),
    ({"ttl_seconds": "60"}, "ttl_seconds"),
    ({"expires_at": "2026-07-01"}, "not an RFC 3339 date-time"),
    ({"expires_at": "2026-07-01T12:00:00"}, "not an RFC 3339 date-time with an offset"),
    ({"expires_at": "in five minutes"}, "RFC 3339"),
    ({"expires_at": "2026-13-01T12:00:00Z"}, "RFC 3339"),
    ({"expires_at": "2026-02-30T12:00:00Z"}, "RFC 3339"),
    ({"expires_at": "2026-07-01T12:00:00+24:00"}, "RFC 3339"),
    ({"expires_at": "２０２６-07-01T12:00:00Z"}, "RFC 3339"),  # full-width digits
    ({"expires_at": 1_782_000_000}, "expires_at must be a timezone-aware datetime or an RFC 3339 string"),
    ({"expires_at": datetime(2026, 7, 1)}, "naive"),
    ({"collapse_key": ""}, "collapse_key '' is not valid: a collapse key is 1 to 256 characters"),
    ({"collapse_key": "   "}, "not only whitespace"),
    ({"collapse_key": "k" * 257}, "1 to 256 characters"),
    ({"collapse_key": "run-1\nprogress"}, "control characters"),
    ({"collapse_key": "run-1\x00"}, "control characters"),
    ({"collapse_key": "tab\there"}, "control characters"),
    ({"collapse_key": "c1\x85"}, "control characters"),
    ({"collapse_key": 7}, "collapse_key must be a string, not int"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_EXPIRY_OR_KEY)
def test_what_hookline_would_refuse_in_expiry_or_collapse_key_is_a_value_error_before_sending(
    fields: dict, message: str
) -> None:
    calls, transport = recording()
    with pytest.raises(ValueError, match=re.escape(message)):
        Event("a", 1, **fields)
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        with pytest.raises(ValueError, match=re.escape(message)):
            hl.send("a", {}, **fields)
        with pytest.raises(ValueError, match=re.escape(message)):
            hl.send_batch([{"event_type": "a", "data": 1}, {"event_type": "a", "data": 2, **fields}])
        event = Event("a", 1)
        for name, value in fields.items():
            setattr(event, name, value)  # set after it was made
        with pytest.raises(ValueError, match=re.escape(message)):
            hl.send_batch([event])
    assert calls == []


@pytest.mark.parametrize("fields", [
    {"ttl_seconds": 1},
    {"ttl_seconds": 1_728_000},
    {"collapse_key": "k" * 256},
    {"collapse_key": "語" * 256},  # characters, not bytes
    {"collapse_key": "crm — production ✓"},
    {"expires_at": "2026-07-01T12:00:00Z"},
    {"expires_at": "2026-07-01t12:00:00.5-07:30"},
    {"expires_at": "2026-07-01 12:00:00.123456789z"},
    {"expires_at": "2016-12-31T23:59:60Z"},  # a leap second
    {"expires_at": datetime(2026, 7, 1, tzinfo=timezone.utc), "collapse_key": "k", "tenant_id": "acme"},
])
def test_the_edges_of_what_hookline_takes_are_accepted(fields: dict) -> None:
    calls, transport = recording()
    with Hookline("http://hookline.test", API_KEY, transport=transport) as hl:
        hl.send("a", {}, id="e-1", **fields)
    [body] = calls
    assert set(body) == {"id", "event_type", "data", *fields}
    for name, value in fields.items():
        assert body[name] == (format_timestamp(value) if isinstance(value, datetime) else value)


def test_an_event_mapping_may_hold_the_new_fields_but_still_no_unknown_one() -> None:
    event = Event.coerce({"event_type": "a", "data": 1, "ttl_seconds": 5, "collapse_key": "k"})
    assert (event.ttl_seconds, event.collapse_key, event.expires_at) == (5, "k", None)
    with pytest.raises(ValueError, match="unknown event fields: \\['ttl'\\]"):
        Event.coerce({"event_type": "a", "data": 1, "ttl": 5})
    with pytest.raises(TypeError):
        Event("a", 1, None, None, None, None, "2026-07-01T12:00:00Z")  # the new fields are keyword-only
