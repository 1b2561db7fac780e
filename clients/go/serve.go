// The responder side of request/reply: consume requests from a group, run a handler with bounded
// concurrency, publish each reply to the request's reply_to with its correlation_id, then ack.

package switchyard

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// Handler answers one request. A non-nil reply is published to the request's ReplyTo with its
// CorrelationID (the handler sets Payload, and Headers or Key if it likes; Topic and CorrelationID
// are overwritten). A nil reply publishes nothing and still acks the request.
//
// An error rejects the request (to the group's dead-letter topic, if it has one) and sends no
// reply, so the requester gets ErrTimedOut; ctx is done when the responder stops.
type Handler func(ctx context.Context, request *Message) (reply *Message, err error)

// ServeOptions tune Serve; the zero value (or nil) is fine.
type ServeOptions struct {
	// Concurrency is how many requests are handled at once; 0 means 16. Client.Serve also asks for
	// that prefetch, so a responder holds no more requests than it is working on.
	Concurrency int
	// AckDeadline (Client.Serve only) is how long a handler may take before its request goes to
	// another responder; 0 is the group's.
	AckDeadline time.Duration
	// OnError, if set, is told of each request that could not be answered: the handler's error, a
	// reply that could not be published (the request is then nacked for another try), or an ack
	// that failed. It is called from the handler's goroutine.
	OnError func(request *Message, err error)
}

const defaultServeConcurrency = 16

// serveCallTimeout bounds each publish and settlement Serve makes, so that a stalled broker cannot
// pin a worker for good; the request then goes back to the group at its ack deadline.
const serveCallTimeout = 10 * time.Second

func (o *ServeOptions) concurrency() int {
	if o == nil || o.Concurrency <= 0 {
		return defaultServeConcurrency
	}
	return o.Concurrency
}

// Serve answers requests on topic as a member of group (requests in a group go to one responder
// each, so responders scale by adding more). It blocks until ctx is done, and then returns nil
// once the handlers running have returned, or until the broker ends the consumer (ErrNotFound when
// the group is deleted), which it returns.
//
// To know when the responder is attached (so that a Request cannot find no responders), call
// Consume and then Consumer.Serve instead.
//
//	err := client.Serve(ctx, "svc.echo", "echo",
//		func(ctx context.Context, req *switchyard.Message) (*switchyard.Message, error) {
//			return &switchyard.Message{Payload: req.Payload}, nil
//		}, nil)
func (c *Client) Serve(ctx context.Context, topic, group string, h Handler, opts *ServeOptions) error {
	var deadline time.Duration
	if opts != nil {
		deadline = opts.AckDeadline
	}
	cons, err := c.Consume(ctx, topic, group, &ConsumeOptions{
		Prefetch:    uint32(opts.concurrency()),
		AckDeadline: deadline,
	})
	if err != nil {
		return err
	}
	return cons.Serve(h, opts)
}

// Serve answers the requests this consumer receives, as Client.Serve does, until the consumer's
// context is done or Close (then it returns nil once the running handlers have returned), or the
// broker ends the consumer (it returns that error). Give the consumer a Prefetch of at least
// opts.Concurrency, or the extra workers idle.
func (c *Consumer) Serve(h Handler, opts *ServeOptions) error {
	workers := make(chan struct{}, opts.concurrency())
	var running sync.WaitGroup
	defer running.Wait()
	for {
		d, err := c.Next()
		if err != nil {
			if c.s.ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		select {
		case workers <- struct{}{}:
		case <-c.s.ctx.Done():
			return nil
		}
		running.Go(func() {
			defer func() { <-workers }()
			c.answer(h, d, opts)
		})
	}
}

// answer runs the handler on one request and settles it.
func (c *Consumer) answer(h Handler, d *Delivery, opts *ServeOptions) {
	ctx := c.s.ctx
	report := func(err error) {
		if opts != nil && opts.OnError != nil {
			opts.OnError(d.Message, err)
		}
	}
	bounded := func(call func(context.Context) error) error {
		callCtx, cancel := context.WithTimeout(ctx, serveCallTimeout)
		defer cancel()
		return call(callCtx)
	}

	reply, err := h(ctx, d.Message)
	if err != nil {
		report(err)
		if err := bounded(d.Reject); err != nil {
			report(err)
		}
		return
	}
	if reply != nil && d.Message.ReplyTo != "" {
		out := *reply
		out.Topic = d.Message.ReplyTo
		out.CorrelationID = d.Message.CorrelationID
		err := bounded(func(ctx context.Context) error {
			_, err := c.client.Publish(ctx, out)
			return err
		})
		if err != nil {
			report(err)
			if err := bounded(func(ctx context.Context) error { return d.Nack(ctx, 0) }); err != nil {
				report(err)
			}
			return
		}
	}
	if err := bounded(d.Ack); err != nil {
		report(err)
	}
}
