// The frames of one bidirectional stream that wait for their answer, numbered: what the
// Publisher's and the Requester's streams share.

package switchyard

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// waitlist numbers the frames sent on one stream and holds what each waits with, until its answer
// comes or the stream breaks.
type waitlist[T any] struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]T
	failed  error // set once the stream is broken
}

func newWaitlist[T any]() *waitlist[T] { return &waitlist[T]{waiting: map[uint64]T{}} }

// add numbers a frame and holds item for its answer; once the stream is broken, its error.
func (w *waitlist[T]) add(item T) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return 0, w.failed
	}
	w.next++
	w.waiting[w.next] = item
	return w.next, nil
}

// take removes what frame sequence waits with, if it still waits.
func (w *waitlist[T]) take(sequence uint64) (T, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	item, ok := w.waiting[sequence]
	delete(w.waiting, sequence)
	return item, ok
}

func (w *waitlist[T]) broken() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed != nil
}

// fail marks the stream broken with err and returns what still waited; the first call only.
func (w *waitlist[T]) fail(err error) ([]T, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return nil, false
	}
	w.failed = err
	items := make([]T, 0, len(w.waiting))
	for _, item := range w.waiting {
		items = append(items, item)
	}
	w.waiting = map[uint64]T{}
	return items, true
}

// answered is a stream's answer frame: it names the frame it answers.
type answered interface{ GetSequence() uint64 }

// readAnswers reads recv until the stream ends, handing each answer to what its frame waits with
// (answers to frames no longer waiting are dropped), then calls end with why it ended: op's
// *Error, ErrUnavailable for a clean end, since frames may still have waited.
func readAnswers[Resp answered, T any](op string, recv func() (Resp, error), w *waitlist[T],
	answer func(T, Resp), end func(error),
) {
	for {
		resp, err := recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "the broker ended the "+op+" stream")
			}
			end(wrap(op, err))
			return
		}
		if item, ok := w.take(resp.GetSequence()); ok {
			answer(item, resp)
		}
	}
}
