// Status codes to sentinels, the field of an InvalidArgument, and durations on the wire.

package switchyard

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Each status code maps to its sentinel, and the error keeps the code and the broker's words.
func TestWrapMapsCodes(t *testing.T) {
	cases := []struct {
		code    codes.Code
		message string
		kind    error
	}{
		{codes.InvalidArgument, "topic: is empty", ErrInvalidArgument},
		{codes.ResourceExhausted, "messages[0]: group g is full (2 messages)", ErrGroupFull},
		{codes.OutOfRange, "too big", ErrTooLarge},
		{codes.FailedPrecondition, "group g is exclusive and already has an active consumer", ErrFailedPrecondition},
		{codes.NotFound, "group g not found", ErrNotFound},
		{codes.Unavailable, "no responders for topic svc.x", ErrNoResponders},
		{codes.Unavailable, "connection refused", ErrUnavailable},
		{codes.DeadlineExceeded, "no reply within 5000 ms", ErrTimedOut},
		{codes.Canceled, "context canceled", context.Canceled},
		{codes.Unauthenticated, "missing or unknown bearer token", ErrUnauthenticated},
		{codes.PermissionDenied, "topic: token reader may not subscribe to orders.>", ErrPermissionDenied},
	}
	for _, c := range cases {
		err := wrap("op", status.Error(c.code, c.message))
		var e *Error
		if !errors.Is(err, c.kind) || !errors.As(err, &e) || e.Code != c.code || e.Message != c.message {
			t.Errorf("%v %q became %#v, want kind %v", c.code, c.message, err, c.kind)
		}
		if status.Code(err) != c.code {
			t.Errorf("status.Code of %v = %v", err, status.Code(err))
		}
	}
	if err := wrap("op", status.Error(codes.Unavailable, "connection refused")); errors.Is(err, ErrNoResponders) {
		t.Error("a transport failure must not read as no responders")
	}
	if err := wrap("request", status.Error(codes.DeadlineExceeded, "late")); !errors.Is(err, context.DeadlineExceeded) {
		t.Error("ErrTimedOut should also be context.DeadlineExceeded")
	}
	if err := wrap("request", context.DeadlineExceeded); !errors.Is(err, ErrTimedOut) {
		t.Errorf("a context deadline is %v, want ErrTimedOut", err)
	}
	if wrap("op", nil) != nil {
		t.Error("wrap(nil) must be nil")
	}
}

// The field of an InvalidArgument is the path the broker's message starts with.
func TestInvalidArgumentField(t *testing.T) {
	for message, field := range map[string]string{
		"messages[1].payload: is 2048 bytes, more than the limit of 1024": "messages[1].payload",
		"topic: `>` must be the last token":                               "topic",
		"something odd happened: yes":                                     "",
		"no colon at all":                                                 "",
	} {
		var e *Error
		errors.As(wrap("op", status.Error(codes.InvalidArgument, message)), &e)
		if e.Field != field {
			t.Errorf("field of %q = %q, want %q", message, e.Field, field)
		}
	}
}

// Durations go to the wire in whole milliseconds, rounded up, within uint32.
func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]uint32{
		-time.Second:            0,
		0:                       0,
		time.Microsecond:        1,
		1500 * time.Microsecond: 2,
		time.Second:             1000,
		2000 * time.Hour:        math.MaxUint32,
	} {
		if got := millis(d); got != want {
			t.Errorf("millis(%v) = %d, want %d", d, got, want)
		}
	}
}
