import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsumeMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSUME_MODE_UNSPECIFIED: _ClassVar[ConsumeMode]
    CONSUME_MODE_SHARED: _ClassVar[ConsumeMode]
    CONSUME_MODE_EXCLUSIVE: _ClassVar[ConsumeMode]
CONSUME_MODE_UNSPECIFIED: ConsumeMode
CONSUME_MODE_SHARED: ConsumeMode
CONSUME_MODE_EXCLUSIVE: ConsumeMode

class Message(_message.Message):
    __slots__ = ("id", "topic", "payload", "headers", "key", "reply_to", "correlation_id", "published_at")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    topic: str
    payload: bytes
    headers: _containers.ScalarMap[str, str]
    key: str
    reply_to: str
    correlation_id: str
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., topic: _Optional[str] = ..., payload: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ..., key: _Optional[str] = ..., reply_to: _Optional[str] = ..., correlation_id: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("messages", "wait_for_room")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_ROOM_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    wait_for_room: bool
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., wait_for_room: _Optional[bool] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("published",)
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    published: _containers.RepeatedCompositeFieldContainer[Published]
    def __init__(self, published: _Optional[_Iterable[_Union[Published, _Mapping]]] = ...) -> None: ...

class Published(_message.Message):
    __slots__ = ("id", "subscribers", "groups")
    ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    subscribers: int
    groups: int
    def __init__(self, id: _Optional[str] = ..., subscribers: _Optional[int] = ..., groups: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    def __init__(self, topic: _Optional[str] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("message", "gap")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    message: Message
    gap: Gap
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., gap: _Optional[_Union[Gap, _Mapping]] = ...) -> None: ...

class Gap(_message.Message):
    __slots__ = ("missed",)
    MISSED_FIELD_NUMBER: _ClassVar[int]
    missed: int
    def __init__(self, missed: _Optional[int] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("topic", "group", "mode", "prefetch", "ack_deadline_ms", "standby")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_FIELD_NUMBER: _ClassVar[int]
    ACK_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    STANDBY_FIELD_NUMBER: _ClassVar[int]
    topic: str
    group: str
    mode: ConsumeMode
    prefetch: int
    ack_deadline_ms: int
    standby: bool
    def __init__(self, topic: _Optional[str] = ..., group: _Optional[str] = ..., mode: _Optional[_Union[ConsumeMode, str]] = ..., prefetch: _Optional[int] = ..., ack_deadline_ms: _Optional[int] = ..., standby: _Optional[bool] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("message", "delivery_id", "attempt")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    message: Message
    delivery_id: str
    attempt: int
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., delivery_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("ack_ids", "nack_ids", "nack_delay_ms", "reject_ids", "extend_ids")
    ACK_IDS_FIELD_NUMBER: _ClassVar[int]
    NACK_IDS_FIELD_NUMBER: _ClassVar[int]
    NACK_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    REJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXTEND_IDS_FIELD_NUMBER: _ClassVar[int]
    ack_ids: _containers.RepeatedScalarFieldContainer[str]
    nack_ids: _containers.RepeatedScalarFieldContainer[str]
    nack_delay_ms: int
    reject_ids: _containers.RepeatedScalarFieldContainer[str]
    extend_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ack_ids: _Optional[_Iterable[str]] = ..., nack_ids: _Optional[_Iterable[str]] = ..., nack_delay_ms: _Optional[int] = ..., reject_ids: _Optional[_Iterable[str]] = ..., extend_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("unknown_ids",)
    UNKNOWN_IDS_FIELD_NUMBER: _ClassVar[int]
    unknown_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unknown_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RequestRequest(_message.Message):
    __slots__ = ("message", "timeout_ms")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    message: Message
    timeout_ms: int
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class RequestResponse(_message.Message):
    __slots__ = ("reply",)
    REPLY_FIELD_NUMBER: _ClassVar[int]
    reply: Message
    def __init__(self, reply: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class PublishStreamRequest(_message.Message):
    __slots__ = ("sequence", "messages", "wait_for_room")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_ROOM_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    wait_for_room: bool
    def __init__(self, sequence: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., wait_for_room: _Optional[bool] = ...) -> None: ...

class PublishStreamResponse(_message.Message):
    __slots__ = ("sequence", "published", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    published: PublishResponse
    error: StreamError
    def __init__(self, sequence: _Optional[int] = ..., published: _Optional[_Union[PublishResponse, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class RequestStreamRequest(_message.Message):
    __slots__ = ("sequence", "message", "timeout_ms")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    message: Message
    timeout_ms: int
    def __init__(self, sequence: _Optional[int] = ..., message: _Optional[_Union[Message, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class RequestStreamResponse(_message.Message):
    __slots__ = ("sequence", "reply", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    reply: Message
    error: StreamError
    def __init__(self, sequence: _Optional[int] = ..., reply: _Optional[_Union[Message, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "message", "reason", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...
