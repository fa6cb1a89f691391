"""Checks, against a running local stack, what only the whole stack can show: a body
that is not UTF-8 reaches Hookline's own handlers (through devstack's front, as API
Gateway hands it over on AWS) and gets their 400 problem+json, not the emulator's 500.

    infra/with-stack.sh input .tools/venv/bin/python infra/stack_input_check.py
"""

import json
import os
import sys
import urllib.error
import urllib.request

BASE = os.environ["HOOKLINE_URL"]
BODY = b'{"event_type": "a", "data": "\xff\xfe"}'


def post(path: str, key: str, content_type: str | None) -> tuple[int, str, dict]:
    headers = {"authorization": f"Bearer {key}"}
    if content_type:
        headers["content-type"] = content_type
    req = urllib.request.Request(BASE + path, data=BODY, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("content-type", ""), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), json.loads(e.read() or b"null")


failures = []
for path, key in [("/v1/events", os.environ["HOOKLINE_INGEST_KEY"]), ("/v1/endpoints", os.environ["HOOKLINE_ADMIN_KEY"])]:
    for content_type in ["application/json", "text/plain", None]:
        status, ctype, body = post(path, key, content_type)
        ok = status == 400 and ctype == "application/problem+json" and "not UTF-8" in str(body.get("detail", ""))
        print(f"{'ok  ' if ok else 'FAIL'} POST {path} ({content_type}): {status} {ctype} {body}")
        if not ok:
            failures.append(path)
sys.exit(1 if failures else 0)
