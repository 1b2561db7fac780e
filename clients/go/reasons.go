// What the broker's google.rpc details say about an error status, and the one table from a reason
// (or, without one, a status code) to the client's sentinel.

package switchyard

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// reasonDomain is the ErrorInfo domain of the broker's reasons. An ErrorInfo from elsewhere (a
// proxy on the way, say) is not read: its reason belongs to another table.
const reasonDomain = "switchyard.dev"

// details is what an error status carries in grpc-status-details-bin.
type details struct {
	reason     string
	metadata   map[string]string
	field      string
	retryAfter time.Duration
}

// detailsOf reads the ErrorInfo, the first BadRequest violation and the RetryInfo of st. Details of
// types the client does not know are skipped, so a newer broker's additions do not break it.
func detailsOf(st *status.Status) details {
	var d details
	for _, detail := range st.Details() {
		switch detail := detail.(type) {
		case *errdetails.ErrorInfo:
			if detail.GetDomain() == reasonDomain {
				d.reason, d.metadata = detail.GetReason(), detail.GetMetadata()
			}
		case *errdetails.BadRequest:
			if violations := detail.GetFieldViolations(); len(violations) > 0 && d.field == "" {
				d.field = violations[0].GetField()
			}
		case *errdetails.RetryInfo:
			d.retryAfter = detail.GetRetryDelay().AsDuration()
		}
	}
	return d
}

// byReason is the sentinel of each reason that has one of its own (docs/semantics.md, "Reasons").
// A reason not here (TOO_MANY_STREAMS, SHUTTING_DOWN, ...) is the sentinel of its code.
var byReason = map[string]error{
	"INVALID_ARGUMENT":      ErrInvalidArgument,
	"GROUP_FULL":            ErrGroupFull,
	"GROUP_BYTES_FULL":      ErrGroupFull,
	"MEMORY_FULL":           ErrGroupFull,
	"GROUP_EXCLUSIVE_TAKEN": ErrExclusiveTaken,
	"MODE_MISMATCH":         ErrConflict,
	"GROUP_CONFLICT":        ErrConflict,
	"UNKNOWN_GROUP":         ErrNotFound,
	"GROUP_DELETED":         ErrNotFound,
	"NO_RESPONDERS":         ErrNoResponders,
	"REQUEST_TIMED_OUT":     ErrTimedOut,
	"UNAUTHENTICATED":       ErrUnauthenticated,
	"PERMISSION_DENIED":     ErrPermissionDenied,
	"NOT_ADMIN":             ErrPermissionDenied,
}

// kindOf is the sentinel of an error: its reason's if it has one, else its code's.
func kindOf(code codes.Code, reason string) error {
	if kind, ok := byReason[reason]; ok {
		return kind
	}
	return codeKind(code)
}

// codeKind is the sentinel every status of a code also matches, so that a caller can test the
// family (ErrFailedPrecondition) as well as the case (ErrExclusiveTaken).
func codeKind(code codes.Code) error {
	switch code {
	case codes.InvalidArgument:
		return ErrInvalidArgument
	case codes.ResourceExhausted:
		return ErrResourceExhausted
	case codes.OutOfRange:
		return ErrTooLarge
	case codes.FailedPrecondition:
		return ErrFailedPrecondition
	case codes.NotFound:
		return ErrNotFound
	case codes.Unavailable:
		return ErrUnavailable
	case codes.DeadlineExceeded:
		return ErrTimedOut
	case codes.Unauthenticated:
		return ErrUnauthenticated
	case codes.PermissionDenied:
		return ErrPermissionDenied
	case codes.Canceled:
		return context.Canceled
	case codes.OK:
		// Errors that are no status (ErrUnknownDelivery) have no family.
		return nil
	}
	return errors.New(strings.ToLower(strings.ReplaceAll(code.String(), "_", " ")))
}
