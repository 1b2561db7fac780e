// Settlements batched into few Ack calls, as the Rust and TypeScript clients batch them: the first
// goes at once, and what is settled while a call is in flight goes together in the next one, up to
// maxSettleIDs ids a call, so a consumer acking each delivery does not make one call per delivery.

package switchyard

import (
	"context"
	"sync"
	"time"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// maxSettleIDs is the most delivery ids in one Ack call.
const maxSettleIDs = 256

// settleTimeout bounds one batched Ack call: it serves several callers, so none of their contexts
// can be its own.
const settleTimeout = 10 * time.Second

// settlement is one delivery's settlement, waiting for the call that carries it.
type settlement struct {
	op    string // "ack", "nack", "reject" or "extend"
	id    string
	delay time.Duration // a nack's
	done  chan error    // buffered: the sender never waits for a caller that gave up
}

// settler is one client's queue of settlements and the goroutine, while there is one, that
// sends them.
type settler struct {
	broker  pb.BrokerClient
	mu      sync.Mutex
	queue   []settlement
	sending bool
}

// settle queues a settlement and waits for its call's outcome, or for ctx. A settlement whose ctx
// ends first may still be sent.
func (s *settler) settle(ctx context.Context, op, id string, delay time.Duration) error {
	st := settlement{op: op, id: id, delay: delay, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, st)
	if !s.sending {
		s.sending = true
		go s.run()
	}
	s.mu.Unlock()
	select {
	case err := <-st.done:
		return err
	case <-ctx.Done():
		return wrap(op, ctx.Err())
	}
}

// run sends batches until the queue is empty.
func (s *settler) run() {
	for {
		s.mu.Lock()
		batch := s.nextBatch()
		if len(batch) == 0 {
			s.sending = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.send(batch)
	}
}

// nextBatch takes the settlements of the next call: up to maxSettleIDs, in order, whose nacks
// share one delay (an Ack call has one). Called with mu held.
func (s *settler) nextBatch() []settlement {
	n, delay, nacked := 0, time.Duration(0), false
	for n < len(s.queue) && n < maxSettleIDs {
		st := s.queue[n]
		if st.op == "nack" {
			if nacked && st.delay != delay {
				break
			}
			delay, nacked = st.delay, true
		}
		n++
	}
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	return batch
}

// send makes one Ack call for batch and tells each settlement its outcome.
func (s *settler) send(batch []settlement) {
	req := &pb.AckRequest{}
	for _, st := range batch {
		switch st.op {
		case "ack":
			req.AckIds = append(req.AckIds, st.id)
		case "nack":
			req.NackIds = append(req.NackIds, st.id)
			req.NackDelayMs = millis(st.delay)
		case "reject":
			req.RejectIds = append(req.RejectIds, st.id)
		case "extend":
			req.ExtendIds = append(req.ExtendIds, st.id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	resp, err := s.broker.Ack(ctx, req)
	cancel()
	unknown := make(map[string]bool, len(resp.GetUnknownIds()))
	for _, id := range resp.GetUnknownIds() {
		unknown[id] = true
	}
	for _, st := range batch {
		switch {
		case err != nil:
			st.done <- wrap(st.op, err)
		case unknown[st.id]:
			st.done <- unknownDelivery(st.op, st.id)
		default:
			st.done <- nil
		}
	}
}
