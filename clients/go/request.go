// Request/reply from the requesting side.

package switchyard

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// maxRequestWait is the broker's default --max-request-timeout (5m): a longer wait is refused, so a
// context deadline further away than this waits this long.
const maxRequestWait = 300 * time.Second

// Request publishes msg with a fresh reply inbox and waits for the first reply. The wait is
// bounded by ctx's deadline (at most 5 minutes, the broker's default limit), or the broker's
// default request timeout (5 s) when ctx has none. Set msg.CorrelationID to choose the id the reply
// must carry; by default the broker makes one.
//
// It fails with ErrNoResponders at once when no subscriber and no group is on the topic, and with
// ErrTimedOut (which is also context.DeadlineExceeded) when nobody answers in time.
//
//	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
//	defer cancel()
//	reply, err := client.Request(ctx, switchyard.Message{Topic: "svc.echo", Payload: []byte("ping")})
//	switch {
//	case errors.Is(err, switchyard.ErrNoResponders): ...
//	case errors.Is(err, switchyard.ErrTimedOut): ...
//	}
func (c *Client) Request(ctx context.Context, msg Message) (*Message, error) {
	req := &pb.RequestRequest{Message: msg.toPB()}
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		// Unless told, the broker waits its own default (5 s) even when the call's deadline is
		// later, so the context's deadline goes in timeout_ms as well as in the call.
		req.TimeoutMs = millis(min(time.Until(deadline), maxRequestWait))
		if req.TimeoutMs == 0 {
			return nil, wrap("request", context.DeadlineExceeded)
		}
	}
	resp, err := c.broker.Request(ctx, req)
	if err != nil {
		err = wrap("request", err)
		var e *Error
		if hasDeadline && errors.As(err, &e) && e.Code == codes.Canceled && !errors.Is(ctx.Err(), context.Canceled) {
			// The caller did not cancel: the broker's gRPC layer did, when the call's deadline
			// passed there before the broker's own timer (tonic reports that as CANCELLED "Timeout
			// expired", not DEADLINE_EXCEEDED). For the caller it is the same timeout.
			e.timedOut()
		}
		return nil, err
	}
	if resp.GetReply() == nil {
		return nil, protocolError("request", "the broker sent no reply message")
	}
	return messageFromPB(resp.GetReply()), nil
}
