// The one server-streaming call that Subscription and Consumer are built on: opened and joined
// before it is returned, read with Next or as an iterator, ended by its context or Close, and
// opened again by itself after the connection drops.

package switchyard

import (
	"context"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The waits between attempts to open a dropped stream again: from firstBackoff, doubling, never
// above maxBackoff, each with up to as much again of random jitter, so that the clients of a
// restarted broker do not all come back in step.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
	// reopenTimeout bounds one attempt, so a broker that accepts connections but never answers is
	// retried like one that refuses them.
	reopenTimeout = 10 * time.Second
)

// stream is a server stream of T, already accepted by the broker.
type stream[T any] struct {
	op     string
	ctx    context.Context
	cancel context.CancelFunc
	start  func(context.Context) (grpc.ServerStreamingClient[T], error)
	// mu serialises Recv, and the reopening: a gRPC stream allows one reader at a time, and Next may
	// be called from several goroutines.
	mu   sync.Mutex
	recv grpc.ServerStreamingClient[T]
	// dropped is set when recv failed with a transient status: the next read opens it again.
	dropped bool
}

// dropped is what next returns once where the connection dropped: the stream is opened again at
// the next read.
type dropped struct{ err error }

func (d *dropped) Error() string { return "disconnected, reconnecting: " + d.err.Error() }
func (d *dropped) Unwrap() error { return d.err }

// transient reports whether a stream that ended with err may be opened again: the connection or
// the broker went away (a broker shutting down ends its streams with UNAVAILABLE), rather than the
// broker refusing the stream.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Unknown, codes.Internal, codes.Canceled:
		return true
	}
	return false
}

// openStream starts a call with start and waits for the broker's response headers. The broker
// sends them once the subscription or consumer is in place, so when openStream returns, a message
// published next cannot be missed; and a refusal (invalid pattern, exclusive group taken) is
// returned here rather than by the first Next.
func openStream[T any](ctx context.Context, op string,
	start func(context.Context) (grpc.ServerStreamingClient[T], error),
) (*stream[T], error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream[T]{op: op, ctx: ctx, cancel: cancel, start: start}
	recv, err := s.open(ctx)
	if err != nil {
		cancel()
		return nil, wrap(op, err)
	}
	s.recv = recv
	return s, nil
}

// open makes one attempt at the call, bounded by ctx.
func (s *stream[T]) open(ctx context.Context) (grpc.ServerStreamingClient[T], error) {
	recv, err := s.start(ctx)
	if err != nil {
		return nil, err
	}
	header, err := recv.Header()
	if err == nil && header == nil {
		// No headers: the call ended at once, and Recv has the status.
		_, err = recv.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			return nil, protocolError(s.op, "the broker ended the stream before it started")
		}
	}
	if err != nil {
		return nil, err
	}
	return recv, nil
}

// reopen opens the call again, with backoff, until it works, the broker refuses it for good (that
// error), or the stream's context is done (its error). Each attempt is bounded by reopenTimeout on
// a context of its own that the stream's context parents, so a timed-out attempt ends its call.
func (s *stream[T]) reopen() error {
	wait := firstBackoff
	for {
		attempt, cancel := context.WithCancel(s.ctx)
		timer := time.AfterFunc(reopenTimeout, cancel)
		recv, err := s.open(attempt)
		timer.Stop()
		if err == nil {
			// The call lives as long as the stream: attempt is released when the stream's context is.
			s.recv = recv
			return nil
		}
		cancel()
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if !transient(err) {
			return wrap(s.op, err)
		}
		jittered := wait + rand.N(wait)
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(jittered):
		}
		wait = min(2*wait, maxBackoff/2)
	}
}

// next blocks for the next item. At the end it returns io.EOF if the broker ended the stream
// cleanly, the context's error if the stream's context is done or Close was called, and an *Error
// for a broker status (ErrNotFound when a consumer's group is deleted). Where the connection
// dropped, it returns a *dropped once, and the next call opens the stream again first.
func (s *stream[T]) next() (*T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ctx.Err(); err != nil {
		// Closed: what the transport had buffered is not handed out any more.
		return nil, err
	}
	if s.dropped {
		if err := s.reopen(); err != nil {
			return nil, err
		}
		s.dropped = false
	}
	item, err := s.recv.Recv()
	switch {
	case err == nil:
		return item, nil
	case s.ctx.Err() != nil:
		return nil, s.ctx.Err()
	case errors.Is(err, io.EOF):
		return nil, io.EOF
	case transient(err):
		s.dropped = true
		return nil, &dropped{wrap(s.op, err)}
	}
	return nil, wrap(s.op, err)
}

// all is next as an iterator of converted items, with a drop converted by onDrop: yielded when it
// says so, skipped otherwise. It ends quietly when the stream's context is done (the caller stopped
// it) or the broker ended the stream cleanly; any other end is yielded once as an error. Breaking
// out of the loop closes the stream.
func all[T, U any](s *stream[T], convert func(*T) U, onDrop func(error) (U, bool)) iter.Seq2[U, error] {
	return func(yield func(U, error) bool) {
		defer s.close()
		for {
			item, err := s.next()
			var drop *dropped
			if errors.As(err, &drop) {
				if u, ok := onDrop(drop.err); ok && !yield(u, nil) {
					return
				}
				continue
			}
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
