// Reasons and status codes to sentinels, the details an error keeps, and durations on the wire.

package switchyard

import (
	"context"
	"errors"
	"maps"
	"math"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// withReason is a status as the broker sends it: an ErrorInfo in the broker's domain, and any
// other details given.
func withReason(t *testing.T, code codes.Code, message, reason string, metadata map[string]string, more ...protoadapt.MessageV1) error {
	t.Helper()
	info := &errdetails.ErrorInfo{Reason: reason, Domain: reasonDomain, Metadata: metadata}
	st, err := status.New(code, message).WithDetails(append([]protoadapt.MessageV1{info}, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// Each reason maps to its sentinel and the error also matches its code's; the error keeps the
// code, the reason and the broker's words.
func TestWrapMapsReasons(t *testing.T) {
	cases := []struct {
		code         codes.Code
		reason       string
		kind, family error
	}{
		{codes.InvalidArgument, "INVALID_ARGUMENT", ErrInvalidArgument, ErrInvalidArgument},
		{codes.ResourceExhausted, "GROUP_FULL", ErrGroupFull, ErrResourceExhausted},
		{codes.ResourceExhausted, "GROUP_BYTES_FULL", ErrGroupFull, ErrResourceExhausted},
		{codes.ResourceExhausted, "MEMORY_FULL", ErrGroupFull, ErrResourceExhausted},
		{codes.ResourceExhausted, "TOO_MANY_STREAMS", ErrResourceExhausted, ErrResourceExhausted},
		{codes.FailedPrecondition, "GROUP_EXCLUSIVE_TAKEN", ErrExclusiveTaken, ErrFailedPrecondition},
		{codes.FailedPrecondition, "MODE_MISMATCH", ErrConflict, ErrFailedPrecondition},
		{codes.FailedPrecondition, "GROUP_CONFLICT", ErrConflict, ErrFailedPrecondition},
		{codes.NotFound, "UNKNOWN_GROUP", ErrNotFound, ErrNotFound},
		{codes.NotFound, "GROUP_DELETED", ErrNotFound, ErrNotFound},
		{codes.Unavailable, "NO_RESPONDERS", ErrNoResponders, ErrUnavailable},
		{codes.Unavailable, "SHUTTING_DOWN", ErrUnavailable, ErrUnavailable},
		{codes.DeadlineExceeded, "REQUEST_TIMED_OUT", ErrTimedOut, ErrTimedOut},
		{codes.Unauthenticated, "UNAUTHENTICATED", ErrUnauthenticated, ErrUnauthenticated},
		{codes.PermissionDenied, "PERMISSION_DENIED", ErrPermissionDenied, ErrPermissionDenied},
		{codes.PermissionDenied, "NOT_ADMIN", ErrPermissionDenied, ErrPermissionDenied},
	}
	for _, c := range cases {
		metadata := map[string]string{"group": "g"}
		err := wrap("op", withReason(t, c.code, "words", c.reason, metadata))
		var e *Error
		if !errors.Is(err, c.kind) || !errors.Is(err, c.family) || !errors.As(err, &e) {
			t.Errorf("%s became %#v, want %v and %v", c.reason, err, c.kind, c.family)
			continue
		}
		if e.Code != c.code || e.Reason != c.reason || e.Metadata["group"] != "g" || e.Message != "words" {
			t.Errorf("%s became %#v", c.reason, e)
		}
		if status.Code(err) != c.code || len(status.Convert(err).Details()) != 1 {
			t.Errorf("the status of %v is %v, without its details", err, status.Convert(err))
		}
		var st interface{ GRPCStatus() *status.Status }
		if !errors.As(errors.Unwrap(err), &st) || st.GRPCStatus().Code() != c.code {
			t.Errorf("%v does not unwrap to its gRPC status", err)
		}
	}
}

// Without details the code alone picks the sentinel: the message's words count for nothing, and an
// ErrorInfo of another domain is not the broker's.
func TestWrapFallsBackToTheCode(t *testing.T) {
	cases := []struct {
		code codes.Code
		kind error
	}{
		{codes.InvalidArgument, ErrInvalidArgument},
		{codes.ResourceExhausted, ErrResourceExhausted},
		{codes.OutOfRange, ErrTooLarge},
		{codes.FailedPrecondition, ErrFailedPrecondition},
		{codes.NotFound, ErrNotFound},
		{codes.Unavailable, ErrUnavailable},
		{codes.DeadlineExceeded, ErrTimedOut},
		{codes.Canceled, context.Canceled},
		{codes.Unauthenticated, ErrUnauthenticated},
		{codes.PermissionDenied, ErrPermissionDenied},
	}
	for _, c := range cases {
		err := wrap("op", status.Error(c.code, "no responders for topic svc.x"))
		var e *Error
		if !errors.Is(err, c.kind) || !errors.As(err, &e) || e.Code != c.code || e.Reason != "" {
			t.Errorf("%v became %#v, want kind %v", c.code, err, c.kind)
		}
		if errors.Is(err, ErrNoResponders) {
			t.Errorf("%v: the message's words made it ErrNoResponders", c.code)
		}
	}
	info := &errdetails.ErrorInfo{Reason: "NO_RESPONDERS", Domain: "proxy.example"}
	st, _ := status.New(codes.Unavailable, "upstream").WithDetails(info)
	if err := wrap("op", st.Err()); errors.Is(err, ErrNoResponders) {
		t.Errorf("another domain's reason was read as the broker's: %#v", err)
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

// Field comes from the BadRequest and RetryAfter from the RetryInfo; neither is read from the text.
func TestFieldAndRetryAfterFromDetails(t *testing.T) {
	bad := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "messages[1].payload", Description: "is 2048 bytes"},
	}}
	var e *Error
	errors.As(wrap("op", withReason(t, codes.InvalidArgument, "messages[1].payload: is 2048 bytes",
		"INVALID_ARGUMENT", nil, bad)), &e)
	if e.Field != "messages[1].payload" || e.RetryAfter != 0 {
		t.Errorf("field %q, retry after %v", e.Field, e.RetryAfter)
	}
	retry := &errdetails.RetryInfo{RetryDelay: durationpb.New(100 * time.Millisecond)}
	errors.As(wrap("op", withReason(t, codes.ResourceExhausted, "messages[0]: group g is full",
		"GROUP_FULL", nil, retry)), &e)
	if e.Field != "" || e.RetryAfter != 100*time.Millisecond {
		t.Errorf("field %q, retry after %v", e.Field, e.RetryAfter)
	}
	errors.As(wrap("op", status.Error(codes.InvalidArgument, "topic: is empty")), &e)
	if e.Field != "" {
		t.Errorf("a field %q was read from the message", e.Field)
	}
}

// A refused stream frame is the *Error a unary call's status would be: its sentinels, its reason
// and the reason's metadata, which its status also carries as the broker's ErrorInfo.
func TestStreamErrorCarriesMetadata(t *testing.T) {
	metadata := map[string]string{"group": "small", "index": "1", "max_length": "2"}
	err := streamError("publish", &pb.StreamError{Code: int32(codes.ResourceExhausted), Message: "full",
		Reason: "GROUP_FULL", Metadata: metadata})
	var e *Error
	if !errors.Is(err, ErrGroupFull) || !errors.Is(err, ErrResourceExhausted) || !errors.As(err, &e) {
		t.Fatalf("a GROUP_FULL frame became %#v", err)
	}
	if e.Op != "publish" || e.Code != codes.ResourceExhausted || e.Reason != "GROUP_FULL" ||
		e.Message != "full" || !maps.Equal(e.Metadata, metadata) || e.Field != "" || e.RetryAfter != 0 {
		t.Errorf("a GROUP_FULL frame became %#v", e)
	}
	metadata["group"] = "changed"
	if e.Metadata["group"] != "small" {
		t.Error("the error shares its metadata map with the frame")
	}
	if d := detailsOf(status.Convert(err)); d.reason != "GROUP_FULL" || d.metadata["max_length"] != "2" {
		t.Errorf("the status of %v carries %+v, not the frame's ErrorInfo", err, d)
	}

	err = streamError("request", &pb.StreamError{Code: int32(codes.Unavailable), Message: "nobody",
		Reason: "NO_RESPONDERS", Metadata: map[string]string{"topic": "svc.x"}})
	if !errors.Is(err, ErrNoResponders) || !errors.As(err, &e) || e.Metadata["topic"] != "svc.x" {
		t.Errorf("a NO_RESPONDERS frame became %#v", err)
	}

	// Without a reason, the code alone picks the sentinel, and there is no metadata.
	err = streamError("request", &pb.StreamError{Code: int32(codes.Unavailable), Message: "nobody"})
	if errors.Is(err, ErrNoResponders) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) ||
		e.Reason != "" || len(e.Metadata) != 0 || len(status.Convert(err).Details()) != 0 {
		t.Errorf("a frame without a reason became %#v", err)
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
