"""hookline.fastapi.webhook_verifier as a FastAPI dependency, through TestClient (no socket)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from hookline.errors import ConfigurationError
from hookline.fastapi import webhook_verifier
from hookline.verify import sign_webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    verified = webhook_verifier(SECRET, tolerance=60)

    @app.post("/webhooks")
    async def receive(event: dict[str, Any] = Depends(verified)) -> dict[str, Any]:
        return {"got": event["event_type"], "id": event["id"]}

    return TestClient(app)


def body_and_headers(ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": "evt_1", "event_type": "agent_interrupted", "data": {"run_id": "r"}}).encode()
    headers = sign_webhook(body, SECRET, msg_id="evt_1", timestamp=ts if ts is not None else int(time.time()))
    return body, {**headers, "content-type": "application/json"}


def test_a_signed_webhook_reaches_the_route(client: TestClient) -> None:
    body, headers = body_and_headers()
    r = client.post("/webhooks", content=body, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"got": "agent_interrupted", "id": "evt_1"}


def test_a_wrong_signature_is_401(client: TestClient) -> None:
    body, headers = body_and_headers()
    r = client.post("/webhooks", content=body.replace(b"evt_1", b"evt_2"), headers=headers)
    assert r.status_code == 401
    assert "signature" in r.json()["detail"]


def test_a_stale_webhook_is_401(client: TestClient) -> None:
    body, headers = body_and_headers(ts=int(time.time()) - 3600)
    r = client.post("/webhooks", content=body, headers=headers)
    assert r.status_code == 401
    assert "too old" in r.json()["detail"]


def test_missing_headers_are_400(client: TestClient) -> None:
    body, _ = body_and_headers()
    r = client.post("/webhooks", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_the_seed_header_alone_is_refused(client: TestClient) -> None:
    body, headers = body_and_headers()
    r = client.post("/webhooks", content=body, headers={"X-Webhook-Signature": headers["X-Webhook-Signature"]})
    assert r.status_code == 400


def test_a_malformed_secret_fails_at_start_up() -> None:
    with pytest.raises(ConfigurationError):
        webhook_verifier("whsec_not base64!")


def test_no_secret_fails_at_start_up() -> None:
    with pytest.raises(ValueError):
        webhook_verifier("")
