// The errors the client returns: one *Error type that keeps the broker's status, and sentinels to
// test it against with errors.Is.

package switchyard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinels for errors.Is. Each broker status code maps to one of them (see the broker's
// docs/semantics.md, "Status codes"); an *Error also matches the context errors its code stands for.
var (
	// ErrInvalidArgument: the broker refused malformed input. Error.Field names the offending field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrGroupFull: RESOURCE_EXHAUSTED. A group the batch would go to is at its max_length or
	// max_bytes, or the broker's memory budget is spent (nothing was published); or the broker's
	// subscription limit is reached.
	ErrGroupFull = errors.New("group full")
	// ErrTooLarge: one gRPC message was larger than the broker's --max-request-bytes.
	ErrTooLarge = errors.New("message too large")
	// ErrFailedPrecondition: an exclusive group already has its active consumer, or a group exists
	// in another mode or with other settings.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrNotFound: deleting an unknown group, or the group of a consumer was deleted.
	ErrNotFound = errors.New("not found")
	// ErrNoResponders: a request found no subscriber and no group on its topic.
	ErrNoResponders = errors.New("no responders")
	// ErrTimedOut: no reply (or answer) before the deadline. It also matches
	// context.DeadlineExceeded.
	ErrTimedOut = errors.New("timed out")
	// ErrUnavailable: the broker is shutting down or cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthenticated: the broker has authentication on and the call carried no token, or one it
	// does not know (see WithToken).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the token is known but may not do this (publish to that topic, subscribe
	// to that pattern, an admin call without "admin": true). Error.Field names the field.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnknownDelivery: an Ack, Nack, Reject or Extend named a delivery that is not outstanding
	// (already settled, redelivered under a new id, or its consumer's stream ended). Nothing
	// happened to it.
	ErrUnknownDelivery = errors.New("unknown delivery")
)

// Error is a call that failed. Test it with errors.Is against the sentinels above, or with
// errors.As to read the code and the broker's own words.
type Error struct {
	// Op is the client operation: "publish", "subscribe", "consume", "ack", "request",
	// "declare group", ...
	Op string
	// Code is the gRPC status code (codes.OK for ErrUnknownDelivery, which is no status).
	Code codes.Code
	// Field is, for ErrInvalidArgument and ErrPermissionDenied, the path of the field the broker named, such as
	// "messages[1].payload" or "topic"; empty otherwise.
	Field string
	// Message is the broker's message, e.g. "messages[1].payload: is 2048 bytes, more than the limit
	// of 1024".
	Message string

	kind error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("switchyard: %s: %v", e.Op, e.kind)
	}
	return fmt.Sprintf("switchyard: %s: %v: %s", e.Op, e.kind, e.Message)
}

// Is matches the sentinel of the error's kind; a timeout also matches context.DeadlineExceeded, and
// a cancelled call is context.Canceled.
func (e *Error) Is(target error) bool {
	switch {
	case target == e.kind:
		return true
	case target == context.DeadlineExceeded:
		return e.kind == ErrTimedOut
	}
	return false
}

// GRPCStatus lets status.FromError and status.Code read the original status.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// kindOf is the one table from a status code to the client's sentinel.
func kindOf(code codes.Code, message string) error {
	switch code {
	case codes.InvalidArgument:
		return ErrInvalidArgument
	case codes.ResourceExhausted:
		return ErrGroupFull
	case codes.OutOfRange:
		return ErrTooLarge
	case codes.FailedPrecondition:
		return ErrFailedPrecondition
	case codes.NotFound:
		return ErrNotFound
	case codes.Unavailable:
		// The broker says so in these words; a transport failure is also UNAVAILABLE, but is not
		// evidence that nobody serves the topic.
		if strings.HasPrefix(message, "no responders") {
			return ErrNoResponders
		}
		return ErrUnavailable
	case codes.DeadlineExceeded:
		return ErrTimedOut
	case codes.Unauthenticated:
		return ErrUnauthenticated
	case codes.PermissionDenied:
		return ErrPermissionDenied
	case codes.Canceled:
		return context.Canceled
	}
	return errors.New(strings.ToLower(strings.ReplaceAll(code.String(), "_", " ")))
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
	e := &Error{Op: op, Code: st.Code(), Message: st.Message(), kind: kindOf(st.Code(), st.Message())}
	if e.Code == codes.InvalidArgument || e.Code == codes.PermissionDenied {
		// The broker starts the message with the field's path: "messages[1].payload: is 2048 bytes",
		// "topic: token reader may not subscribe to orders.>".
		if field, _, found := strings.Cut(e.Message, ": "); found && !strings.ContainsAny(field, " \t") {
			e.Field = field
		}
	}
	return e
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
