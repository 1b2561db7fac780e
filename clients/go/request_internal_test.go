// Request's reading of a deadline that the broker's gRPC layer reports as a cancel.

package switchyard

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// answering is a connection whose every unary call fails with err.
type answering struct{ err error }

func (a answering) Invoke(context.Context, string, any, any, ...grpc.CallOption) error { return a.err }

func (a answering) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, a.err
}

// When the call's deadline passes on the broker before its own timer, tonic answers CANCELLED
// "Timeout expired"; a caller who set a deadline and did not cancel gets ErrTimedOut.
func TestRequestCancelledByBrokerDeadlineIsTimeout(t *testing.T) {
	client := New(answering{status.Error(codes.Canceled, "Timeout expired")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := client.Request(ctx, Message{Topic: "svc.x"})
	if !errors.Is(err, ErrTimedOut) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrTimedOut", err)
	}

	// Without a deadline, a cancel stays a cancel.
	_, err = client.Request(context.Background(), Message{Topic: "svc.x"})
	if errors.Is(err, ErrTimedOut) || !errors.Is(err, context.Canceled) {
		t.Fatalf("without a deadline got %v, want context.Canceled", err)
	}

	// And so does the caller's own cancel.
	cancelled, cancelNow := context.WithTimeout(context.Background(), time.Second)
	cancelNow()
	_, err = client.Request(cancelled, Message{Topic: "svc.x"})
	if errors.Is(err, ErrTimedOut) {
		t.Fatalf("after the caller's cancel got %v", err)
	}
}
