#!/usr/bin/env python3
"""A webhook receiver for trying Hookline locally (standard library only).

    python3 infra/receiver.py 8088                  # print what arrives
    WEBHOOK_SECRET=whsec_... python3 infra/receiver.py 8088   # and verify signatures

It listens on 127.0.0.1 only, prints each webhook's Hookline headers and body, checks
the Standard Webhooks signature (webhook-signature) when WEBHOOK_SECRET is set, and
answers 200 (or 500 when verification fails).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET", "")
TOLERANCE = 300


def verify(headers, body):
    """True when any v1 signature in webhook-signature matches and the time is fresh."""
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature", "")
    if not (msg_id and ts and ts.isdigit()) or abs(time.time() - int(ts)) > TOLERANCE:
        return False
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s.split(",", 1)[1]) for s in sigs.split() if s.startswith("v1,"))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        print(f"\n--- {self.command} {self.path}")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "x-webhook-event",
                     "x-webhook-delivery", "x-webhook-signature", "user-agent"):
            print(f"{name}: {self.headers.get(name)}")
        try:
            print(json.dumps(json.loads(body), indent=2))
        except ValueError:
            print(body[:1024])
        status = 200
        if SECRET:
            ok = verify(self.headers, body)
            print("signature:", "verified" if ok else "DOES NOT VERIFY")
            status = 200 if ok else 500
        sys.stdout.flush()
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"bad signature")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8088
    print(f"receiving webhooks on http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
