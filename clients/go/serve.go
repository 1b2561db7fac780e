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
// reply, so the requester gets ErrTimedOut. ctx is not done when the responder is told to stop:
// a handler then still runs to its end, for at most the drain limit (see ServeOptions), after
// which ctx is done.
type Handler func(ctx context.Context, request *Message) (reply *Message, err error)

// ServeOptions tune Serve; the zero value (or nil) is fine.
type ServeOptions struct {
	// Concurrency is how many requests are handled at once; 0 means 16. Client.Serve also asks for
	// that prefetch, so a responder holds no more requests than it is working on.
	Concurrency int
	// AckDeadline (Client.Serve only) is how long a handler may take before its request goes to
	// another responder; 0 is the group's. It is also how long a stopped responder waits for its
	// running handlers (the drain limit); without it, 30 s, the broker's default deadline.
	AckDeadline time.Duration
	// OnError, if set, is told of each request that could not be answered: the handler's error, a
	// reply that could not be published (the request is then nacked for another try), or an ack
	// that failed. It is called from the handler's goroutine.
	OnError func(request *Message, err error)
}

const defaultServeConcurrency = 16

// defaultDrain is how long a stopped responder waits for its running handlers when the ack
// deadline is not known here: the broker's default deadline, after which it redelivers them anyway.
const defaultDrain = 30 * time.Second

// serveCallTimeout bounds each publish and settlement Serve makes, so that a stalled broker cannot
// pin a worker for good; the request then goes back to the group at its ack deadline.
const serveCallTimeout = 10 * time.Second

func (o *ServeOptions) concurrency() int {
	if o == nil || o.Concurrency <= 0 {
		return defaultServeConcurrency
	}
	return o.Concurrency
}

func (o *ServeOptions) drain() time.Duration {
	if o == nil || o.AckDeadline <= 0 {
		return defaultDrain
	}
	return o.AckDeadline
}

// Serve answers requests on topic as a member of group (requests in a group go to one responder
// each, so responders scale by adding more). It blocks until ctx is done or the broker ends the
// consumer (ErrNotFound when the group is deleted), which it returns.
//
// Stopping is graceful: once ctx is done, Serve takes no more requests, lets the handlers still
// running finish, publish their replies and ack (for at most the drain limit), and only then
// leaves the group and returns nil. Leaving at once would hand those requests back to the group
// while their answers are on the way, to be handled a second time.
//
// To know when the responder is attached (so that a Request cannot find no responders), call
// Consume and then Consumer.ServeUntil instead.
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
	// The consumer outlives ctx, so that the handlers running when ctx is done can still settle;
	// ServeUntil closes it.
	cons, err := c.Consume(context.WithoutCancel(ctx), topic, group, &ConsumeOptions{
		Prefetch:    uint32(opts.concurrency()),
		AckDeadline: deadline,
	})
	if err != nil {
		return err
	}
	return cons.ServeUntil(ctx, h, opts)
}

// ServeUntil answers the requests this consumer receives, as Client.Serve does, until ctx is done
// (then it stops gracefully, as Client.Serve does, and returns nil), or the consumer ends: Close
// or the consumer's own context (nil), or the broker ending it (that error). It closes the
// consumer before it returns. Give the consumer a Prefetch of at least opts.Concurrency, or the
// extra workers idle, and a context that outlives ctx, or a stop cannot be graceful.
func (c *Consumer) ServeUntil(ctx context.Context, h Handler, opts *ServeOptions) error {
	defer c.Close()
	return c.serve(ctx.Done(), h, opts)
}

// Serve is ServeUntil until the consumer's own context is done or Close. The consumer has then
// left the group already: what its handlers were answering goes back to the group, and their
// settlements fail. Prefer ServeUntil with a context of its own.
func (c *Consumer) Serve(h Handler, opts *ServeOptions) error {
	return c.serve(c.s.ctx.Done(), h, opts)
}

// received is what one read of the consumer gave.
type received struct {
	delivery *Delivery
	err      error
}

// serve hands deliveries to at most opts.concurrency() handlers until stop is closed or the
// consumer ends, then waits for the handlers running (at most the drain limit after a stop).
func (c *Consumer) serve(stop <-chan struct{}, h Handler, opts *ServeOptions) error {
	// Handlers, their replies and settlements run on a context that a stop does not cancel: the
	// drain limit does.
	work, cancelWork := context.WithCancel(context.WithoutCancel(c.s.ctx))
	defer cancelWork()
	workers := make(chan struct{}, opts.concurrency())
	var running sync.WaitGroup

	// Next blocks in the stream's Recv, which only the stream's end interrupts: it is read here so
	// that a stop need not wait for the next delivery.
	reads := make(chan received)
	quit := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			d, err := c.Next()
			select {
			case reads <- received{d, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	})
	defer func() {
		close(quit)
		c.Close()
		reader.Wait()
	}()

	drain := func() {
		finished := make(chan struct{})
		go func() {
			running.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(opts.drain()):
			cancelWork()
			<-finished
		}
	}
	for {
		var read received
		select {
		case <-stop:
			drain()
			return nil
		case read = <-reads:
		}
		if read.err != nil {
			running.Wait()
			if c.s.ctx.Err() != nil || errors.Is(read.err, io.EOF) {
				return nil
			}
			return read.err
		}
		select {
		case workers <- struct{}{}:
		case <-stop:
			// Not started: it goes back to the group when the consumer closes.
			drain()
			return nil
		}
		d := read.delivery
		running.Go(func() {
			defer func() { <-workers }()
			c.answer(work, h, d, opts)
		})
	}
}

// answer runs the handler on one request and settles it, all on ctx.
func (c *Consumer) answer(ctx context.Context, h Handler, d *Delivery, opts *ServeOptions) {
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
