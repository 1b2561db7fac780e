"""The asyncio client of Switchyard, a message broker that speaks gRPC.

One `Client` serves the four patterns:

- publish/subscribe: `Client.publish`, `Client.publish_batch`, `Client.subscribe`;
- work queues and exclusive consumers: `Client.consume`, whose `Delivery` items are settled with
  `ack`, `nack`, `reject` or `extend` (or in bulk with `Client.settle`);
- request/reply: `Client.request` and the responder `Client.serve`;
- group administration: `Client.admin`.

It reaches a broker over plaintext or TLS (mutual TLS too), sending a bearer token if given: the
`token` and `tls_*` arguments of `Client`.

Failed calls raise a `SwitchyardError` subclass picked by the broker's reason (`GROUP_FULL`...), with
`reason`, `metadata`, `field` and `retry_after` from the status's details. The generated
protobuf and gRPC modules are in `switchyard.v1`.
"""

from switchyard._admin import Admin
from switchyard._client import Client
from switchyard._consumer import Consumer, Delivery
from switchyard._errors import (
    ExclusiveTaken,
    FailedPrecondition,
    GroupConflict,
    GroupFull,
    InvalidArgument,
    NoResponders,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SwitchyardError,
    TimedOut,
    Unauthenticated,
    Unavailable,
)
from switchyard._pipeline import Closed, Publisher, Requester
from switchyard._responder import Handler, Responder
from switchyard._subscription import Subscription
from switchyard._types import Disconnected, Gap, GroupInfo, Message, Published

__all__ = [
    "Admin",
    "Client",
    "Closed",
    "Consumer",
    "Delivery",
    "Disconnected",
    "ExclusiveTaken",
    "FailedPrecondition",
    "Gap",
    "GroupConflict",
    "GroupFull",
    "GroupInfo",
    "Handler",
    "InvalidArgument",
    "Message",
    "NoResponders",
    "NotFound",
    "PermissionDenied",
    "Published",
    "Publisher",
    "Requester",
    "ResourceExhausted",
    "Responder",
    "Subscription",
    "SwitchyardError",
    "TimedOut",
    "Unauthenticated",
    "Unavailable",
]
