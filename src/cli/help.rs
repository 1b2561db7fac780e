//! The long help of the client commands: what each prints and how it reads its input, shown by
//! `switchyard COMMAND --help`.

pub const MESSAGE_OUTPUT: &str = "\
Output: one line per message on stdout, `[topic] (header=value, ...) payload`, with `key=...` \
before the headers when the message has a key. Control characters in a payload are escaped so a \
message stays on one line, and a payload that is not UTF-8 is shown as `base64:...`.

With --json, one JSON object per line: id, topic, headers, published_at (RFC 3339), and key, \
reply_to, correlation_id when set. The payload is the string `payload` when it is valid UTF-8; \
otherwise it is `payload_base64` (standard alphabet, padded) and `payload` is absent.

Notes (subscribed, reconnecting, messages missed by a slow subscriber) go to stderr.";

pub const CONSUME_OUTPUT: &str = "\
Output: one line per delivery on stdout, `[topic] attempt=N delivery=ID (header=value, ...) \
payload`; see `switchyard sub --help` for how payloads are shown. With --json, the object of \
`sub --json` plus `delivery_id` and `attempt`.

Each delivery is acked once its line is written (unless --no-ack). With --no-ack, deliveries stay \
unsettled: they go back to the group when their ack deadline passes or when this command exits.";

pub const PUBLISH: &str = "\
Without a PAYLOAD argument, every line of stdin (without its line ending) is published as one \
message, in order, until end of input: `printf 'a\\nb\\n' | switchyard pub jobs.new` publishes two \
messages.

Output: one line per message published, with the id the broker gave it and how many subscribers \
and groups it reached; with --json, {\"topic\", \"id\", \"subscribers\", \"groups\"} per line.";

pub const REQUEST: &str = "\
Without a PAYLOAD argument, every line of stdin is sent as one request, one after the other, and \
each reply is printed as it comes.

Each reply is printed on one line as its payload, after `key=...` and `(header=value, ...)` when \
it has them (see `switchyard sub --help` for how payloads are shown); with --json, as the JSON \
object of `sub --json`, whose topic is the request's reply inbox.

No responder on the topic, or no reply in time, is an error (exit status 1).";

pub const REPLY: &str = "\
Each request is printed like a message of `switchyard sub`, then answered. Without --exec the \
reply is the request's payload. With --exec, COMMAND runs through `sh -c` once per request, with \
the payload on its stdin; its stdout (less one trailing newline) is the reply. A command that \
fails or outlasts --exec-timeout sends no reply (the requester times out) and the request is \
rejected. Responders in one group share the requests, so more of them answer more at once.";
