// Pipelined request/reply: many requests at once on one RequestStream, each answered in place.

package switchyard

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Requester sends requests on one RequestStream, as many at once as its callers make, instead of
// a call each: the cheaper way to make many requests. It is safe for concurrent use. The stream
// opens with the first request; one that breaks fails the requests it carried with ErrUnavailable
// (they are never sent again, as they may have been handled) and the next request opens a new one.
// Close it when done.
type Requester struct {
	client *Client

	mu     sync.Mutex
	stream *requests
	closed bool
}

// Requester makes a pipelined requester over this client's connection.
func (c *Client) Requester() *Requester { return &Requester{client: c} }

// Request is Client.Request on the requester's stream: the same timeout rules and errors
// (ErrNoResponders at once, ErrTimedOut), the broker's answer for this request only. Once ctx is
// done, it returns ctx's error (a deadline: ErrTimedOut) without waiting for the broker.
func (r *Requester) Request(ctx context.Context, msg Message) (*Message, error) {
	req := &pb.RequestStreamRequest{Message: msg.toPB()}
	if deadline, ok := ctx.Deadline(); ok {
		req.TimeoutMs = millis(min(time.Until(deadline), maxRequestWait))
		if req.TimeoutMs == 0 {
			return nil, wrap("request", context.DeadlineExceeded)
		}
	}
	stream, err := r.current()
	if err != nil {
		return nil, err
	}
	answer, err := stream.ask(req)
	if err != nil {
		return nil, err
	}
	select {
	case out := <-answer:
		return out.reply, out.err
	case <-ctx.Done():
		stream.forget(req.Sequence)
		return nil, wrap("request", ctx.Err())
	}
}

// Close fails the requests still waiting with ErrClosed and closes the stream; Request then
// returns ErrClosed.
func (r *Requester) Close() {
	r.mu.Lock()
	r.closed = true
	stream := r.stream
	r.stream = nil
	r.mu.Unlock()
	if stream != nil {
		stream.end(ErrClosed)
	}
}

// current is the open stream, or a new one in place of a broken one.
func (r *Requester) current() (*requests, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if r.stream != nil && !r.stream.broken() {
		return r.stream, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	call, err := r.client.broker.RequestStream(ctx)
	if err != nil {
		cancel()
		return nil, wrap("request", err)
	}
	r.stream = &requests{call: call, cancel: cancel, waiting: newWaitlist[chan outcome]()}
	go r.stream.read()
	return r.stream, nil
}

// outcome is the outcome of one request.
type outcome struct {
	reply *Message
	err   error
}

// requests is one RequestStream and the requests on it that wait for their answer.
type requests struct {
	call   grpc.BidiStreamingClient[pb.RequestStreamRequest, pb.RequestStreamResponse]
	cancel context.CancelFunc
	// sending serialises Send, which gRPC allows from one goroutine at a time.
	sending sync.Mutex
	waiting *waitlist[chan outcome]
}

func (s *requests) broken() bool { return s.waiting.broken() }

// ask sends req under a sequence of its own, set in req, and returns where its answer comes.
func (s *requests) ask(req *pb.RequestStreamRequest) (<-chan outcome, error) {
	answer := make(chan outcome, 1)
	sequence, err := s.waiting.add(answer)
	if err != nil {
		return nil, err
	}
	req.Sequence = sequence
	s.sending.Lock()
	// An error means the stream broke: read has its status and fails what waits, this request
	// included, so it is not returned here.
	_ = s.call.Send(req)
	s.sending.Unlock()
	return answer, nil
}

// forget drops a request its caller no longer waits for; its answer, if it comes, is ignored.
func (s *requests) forget(sequence uint64) { s.waiting.take(sequence) }

// read hands each answer to its request, and fails what still waits when the stream ends.
func (s *requests) read() {
	readAnswers("request", s.call.Recv, s.waiting, func(answer chan outcome, resp *pb.RequestStreamResponse) {
		switch {
		case resp.GetError() != nil:
			answer <- outcome{err: streamError("request", resp.GetError())}
		case resp.GetReply() != nil:
			answer <- outcome{reply: messageFromPB(resp.GetReply())}
		default:
			answer <- outcome{err: protocolError("request", "the broker sent an answer without a reply or an error")}
		}
	}, s.end)
}

// end marks the stream broken with err and fails what still waits.
func (s *requests) end(err error) {
	waiting, first := s.waiting.fail(err)
	if !first {
		return
	}
	s.cancel()
	for _, answer := range waiting {
		answer <- outcome{err: err}
	}
}
