"""moto's server, with DynamoDB's writes atomic as they are on AWS.

moto serves each request on a thread of its own, and evaluates a conditional write's
condition and makes the write as two steps: two conditional writes at once could both
pass (two sweeps re-driving one delivery, two workers claiming one attempt). On AWS a
conditional write is atomic; here each write (and each transaction, whole) holds one
lock, so the local stack and the tests see what AWS guarantees.

    python infra/moto_server.py -H 127.0.0.1 -p 5000   (moto_server's arguments)
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_WRITE = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITE:
            return method(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
