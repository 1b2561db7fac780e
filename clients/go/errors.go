// The errors the client returns: one *Error type that keeps the broker's status, and sentinels to
// test it against with errors.Is.

package switchyard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinels for errors.Is. An *Error matches the sentinel of the broker's reason (see the broker's
// docs/semantics.md, "Reasons", and the table in reasons.go) and the sentinel of its status code, so
// ErrExclusiveTaken is also ErrFailedPrecondition; without a reason, only the code's. It also matches
// the context errors its code stands for.
var (
	// ErrInvalidArgument: the broker refused malformed input (INVALID_ARGUMENT). Error.Field names
	// the offending field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrResourceExhausted: any RESOURCE_EXHAUSTED, such as the broker's subscription limit
	// (TOO_MANY_STREAMS) or a full disk (DISK_FULL), as well as every ErrGroupFull.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrGroupFull: a group the batch would go to is at its max_length (GROUP_FULL) or max_bytes
	// (GROUP_BYTES_FULL), or the broker's memory budget is spent (MEMORY_FULL); nothing was
	// published. Error.RetryAfter says when to try again, if waiting can help.
	ErrGroupFull = errors.New("group full")
	// ErrTooLarge: one gRPC message was larger than the broker's --max-request-bytes.
	ErrTooLarge = errors.New("message too large")
	// ErrFailedPrecondition: any FAILED_PRECONDITION; every ErrExclusiveTaken and ErrConflict.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrExclusiveTaken: an exclusive group already has its active consumer
	// (GROUP_EXCLUSIVE_TAKEN).
	ErrExclusiveTaken = errors.New("exclusive group taken")
	// ErrConflict: the group exists in the other mode (MODE_MISMATCH) or with another setting
	// (GROUP_CONFLICT); Error.Metadata names the setting, the existing and the requested value.
	ErrConflict = errors.New("group conflict")
	// ErrNotFound: deleting an unknown group (UNKNOWN_GROUP), or the group of a consumer was
	// deleted (GROUP_DELETED).
	ErrNotFound = errors.New("not found")
	// ErrNoResponders: a request found no subscriber and no group on its topic (NO_RESPONDERS). Its
	// code is UNAVAILABLE, so it is also ErrUnavailable: test ErrNoResponders first.
	ErrNoResponders = errors.New("no responders")
	// ErrTimedOut: no reply (or answer) before the deadline (REQUEST_TIMED_OUT, or
	// DEADLINE_EXCEEDED). It also matches context.DeadlineExceeded.
	ErrTimedOut = errors.New("timed out")
	// ErrUnavailable: the broker is shutting down (SHUTTING_DOWN), its log failed (STORAGE_FAILED),
	// its NATS cluster does not answer (CLUSTER_UNAVAILABLE)
	// or it cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthenticated: the broker has authentication on and the call carried no token, or one it
	// does not know (see WithToken).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the token is known but may not do this (PERMISSION_DENIED: publish to
	// that topic, subscribe to that pattern; NOT_ADMIN: an admin call without "admin": true).
	// Error.Field names the field.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnknownDelivery: an Ack, Nack, Reject or Extend named a delivery that is not outstanding
	// (already settled, redelivered under a new id, or its consumer's stream ended). Nothing
	// happened to it.
	ErrUnknownDelivery = errors.New("unknown delivery")
)

// Error is a call that failed. Test it with errors.Is against the sentinels above, or with
// errors.As to read the reason, the code and the broker's own words.
type Error struct {
	// Op is the client operation: "publish", "subscribe", "consume", "ack", "request",
	// "declare group", ...
	Op string
	// Code is the gRPC status code (codes.OK for ErrUnknownDelivery, which is no status).
	Code codes.Code
	// Reason is the broker's stable name for what went wrong, such as "GROUP_FULL" or
	// "NO_RESPONDERS" (its ErrorInfo in domain switchyard.dev); empty when the status carried none,
	// as when the broker could not be reached. Match on it, or on the sentinels, not on Message.
	Reason string
	// Metadata is what the ErrorInfo names, by reason: "topic", "group", "max_length", "setting",
	// ...; nil without one.
	Metadata map[string]string
	// Field is, for ErrInvalidArgument and ErrPermissionDenied, the path of the field the broker
	// named in its BadRequest, such as "messages[1].payload" or "topic"; empty otherwise.
	Field string
	// RetryAfter is how long the broker suggests waiting before trying again (its RetryInfo), for
	// a group or memory that may drain, or a broker shutting down; 0 where waiting will not help.
	RetryAfter time.Duration
	// Message is the broker's message, e.g. "messages[1].payload: is 2048 bytes, more than the limit
	// of 1024". It is for people: its words may change.
	Message string

	// kind is the sentinel of the reason (or the code), family the code's; either matches Is.
	kind, family error
	// cause is what the call returned (a status error, or a context error), for Unwrap; status is
	// its status, details included.
	cause  error
	status *status.Status
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("switchyard: %s: %v", e.Op, e.kind)
	}
	return fmt.Sprintf("switchyard: %s: %v: %s", e.Op, e.kind, e.Message)
}

// Is matches the sentinel of the error's reason and of its code; a timeout also matches
// context.DeadlineExceeded, and a cancelled call is context.Canceled.
func (e *Error) Is(target error) bool {
	switch {
	case target == e.kind, e.family != nil && target == e.family:
		return true
	case target == context.DeadlineExceeded:
		return e.kind == ErrTimedOut
	}
	return false
}

// Unwrap is what the call returned: the gRPC status error, or the context's error.
func (e *Error) Unwrap() error { return e.cause }

// GRPCStatus lets status.FromError and status.Code read the original status, details included.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// timedOut makes a call the broker's transport cancelled at its deadline the timeout it is to the
// caller: ErrTimedOut, and no longer context.Canceled.
func (e *Error) timedOut() {
	e.kind, e.family = ErrTimedOut, ErrTimedOut
}

// wrap turns what a gRPC call returned into an *Error; nil stays nil, and a context error stays
// recognisable as one.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	d := detailsOf(st)
	return &Error{
		Op: op, Code: st.Code(), Reason: d.reason, Metadata: d.metadata, Field: d.field,
		RetryAfter: d.retryAfter, Message: st.Message(),
		kind: kindOf(st.Code(), d.reason), family: codeKind(st.Code()), cause: err, status: st,
	}
}

// errProtocol is the kind of an answer the client cannot make sense of (a broker bug, or a schema
// mismatch).
var errProtocol = errors.New("protocol violation")

func protocolError(op, message string) error {
	return &Error{Op: op, Code: codes.Internal, Message: message, kind: errProtocol}
}

func unknownDelivery(op, id string) error {
	return &Error{Op: op, Message: "delivery " + id + " is not outstanding", kind: ErrUnknownDelivery}
}
