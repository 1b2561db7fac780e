// The one server-streaming call that Subscription and Consumer are built on: opened and joined
// before it is returned, read with Next or as an iterator, ended by its context or Close.

package switchyard

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync"

	"google.golang.org/grpc"
)

// stream is a server stream of T, already accepted by the broker.
type stream[T any] struct {
	op     string
	ctx    context.Context
	cancel context.CancelFunc
	recv   grpc.ServerStreamingClient[T]
	// mu serialises Recv: a gRPC stream allows one reader at a time, and Next may be called from
	// several goroutines.
	mu sync.Mutex
}

// openStream starts a call with start and waits for the broker's response headers. The broker
// sends them once the subscription or consumer is in place, so when openStream returns, a message
// published next cannot be missed; and a refusal (invalid pattern, exclusive group taken) is
// returned here rather than by the first Next.
func openStream[T any](ctx context.Context, op string,
	start func(context.Context) (grpc.ServerStreamingClient[T], error),
) (*stream[T], error) {
	ctx, cancel := context.WithCancel(ctx)
	recv, err := start(ctx)
	if err != nil {
		cancel()
		return nil, wrap(op, err)
	}
	header, err := recv.Header()
	if err == nil && header == nil {
		// No headers: the call ended at once, and Recv has the status.
		_, err = recv.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			err = protocolError(op, "the broker ended the stream before it started")
		}
	}
	if err != nil {
		cancel()
		return nil, wrap(op, err)
	}
	return &stream[T]{op: op, ctx: ctx, cancel: cancel, recv: recv}, nil
}

// next blocks for the next item. At the end it returns io.EOF if the broker ended the stream
// cleanly, the context's error if the stream's context is done or Close was called, and an *Error
// for a broker status (ErrNotFound when a consumer's group is deleted, ErrUnavailable when the
// broker shuts down or the connection is lost).
func (s *stream[T]) next() (*T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ctx.Err(); err != nil {
		// Closed: what the transport had buffered is not handed out any more.
		return nil, err
	}
	item, err := s.recv.Recv()
	switch {
	case err == nil:
		return item, nil
	case s.ctx.Err() != nil:
		return nil, s.ctx.Err()
	case errors.Is(err, io.EOF):
		return nil, io.EOF
	}
	return nil, wrap(s.op, err)
}

// all is next as an iterator of converted items. It ends quietly when the stream's context is done
// (the caller stopped it) or the broker ended the stream cleanly; any other end is yielded once as
// an error. Breaking out of the loop closes the stream.
func all[T, U any](s *stream[T], convert func(*T) U) iter.Seq2[U, error] {
	return func(yield func(U, error) bool) {
		defer s.close()
		for {
			item, err := s.next()
			if err != nil {
				if s.ctx.Err() == nil && !errors.Is(err, io.EOF) {
					var zero U
					yield(zero, err)
				}
				return
			}
			if !yield(convert(item), nil) {
				return
			}
		}
	}
}

// close cancels the call; the broker unsubscribes, or takes back a consumer's unsettled deliveries.
func (s *stream[T]) close() { s.cancel() }
