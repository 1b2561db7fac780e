// Work queues and exclusive consumers: a Consumer of a queue group, and the Deliveries it must
// settle.

package switchyard

import (
	"context"
	"errors"
	"iter"
	"time"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// ConsumeMode is how a group shares its messages among consumers. It is fixed when the group is
// created.
type ConsumeMode int

const (
	// ModeShared gives each message to one of the group's consumers (competing consumers).
	ModeShared ConsumeMode = iota
	// ModeExclusive has one active consumer, which gets the messages in publish order; others are
	// refused (ErrExclusiveTaken) or, with Standby, wait to take over.
	ModeExclusive
)

func (m ConsumeMode) String() string {
	if m == ModeExclusive {
		return "exclusive"
	}
	return "shared"
}

func (m ConsumeMode) toPB() pb.ConsumeMode {
	if m == ModeExclusive {
		return pb.ConsumeMode_CONSUME_MODE_EXCLUSIVE
	}
	return pb.ConsumeMode_CONSUME_MODE_SHARED
}

func modeFromPB(m pb.ConsumeMode) ConsumeMode {
	if m == pb.ConsumeMode_CONSUME_MODE_EXCLUSIVE {
		return ModeExclusive
	}
	return ModeShared
}

// ConsumeOptions tune Consume; the zero value (or nil) takes the broker's and the group's
// defaults.
type ConsumeOptions struct {
	// Mode of the group; it must match the group's if the group exists.
	Mode ConsumeMode
	// Prefetch is the most unsettled deliveries this consumer holds; 0 is the broker's default
	// (--default-prefetch).
	Prefetch uint32
	// AckDeadline is how long this consumer has to settle a delivery before it goes back to the
	// group; 0 is the group's. Whole milliseconds.
	AckDeadline time.Duration
	// Standby, for ModeExclusive: wait behind the active consumer and take over when its stream
	// ends, instead of being refused.
	Standby bool
	// OnDisconnect, if set, is told each time the connection drops (err is an *Error,
	// ErrUnavailable usually), before the consumer joins its group again by itself, with backoff.
	// The consumer yields nothing for it and does not end: what it held goes back to the group and
	// is redelivered, and settling it fails as ErrUnknownDelivery. It is called from the reading
	// goroutine.
	OnDisconnect func(err error)
}

// Consumer is one consumer of a queue group. Read it with All (or Next); it leaves the group when
// the context given to Consume is done, or at Close, and what it held unsettled goes back to the
// group for redelivery.
type Consumer struct {
	s            *stream[pb.Delivery]
	client       *Client
	onDisconnect func(error)
}

// Consume joins the group (topic pattern, group), creating it with the broker's defaults if it does
// not exist (use DeclareGroup for other settings). When Consume returns, the consumer is attached
// (a standby is queued); an exclusive group that is taken is ErrExclusiveTaken here.
//
//	cons, err := client.Consume(ctx, "images.resize", "workers", &switchyard.ConsumeOptions{Prefetch: 10})
//	if err != nil { ... }
//	for d, err := range cons.All() {
//		if err != nil { ... }   // the group was deleted (ErrNotFound), the broker went away, ...
//		if resize(d.Message.Payload) != nil {
//			d.Nack(ctx, time.Second)
//			continue
//		}
//		d.Ack(ctx)
//	}
func (c *Client) Consume(ctx context.Context, topic, group string, opts *ConsumeOptions) (*Consumer, error) {
	if opts == nil {
		opts = &ConsumeOptions{}
	}
	req := &pb.ConsumeRequest{
		Topic:         topic,
		Group:         group,
		Mode:          opts.Mode.toPB(),
		Prefetch:      opts.Prefetch,
		AckDeadlineMs: millis(opts.AckDeadline),
		Standby:       opts.Standby,
	}
	s, err := openStream(ctx, "consume",
		func(ctx context.Context) (grpc.ServerStreamingClient[pb.Delivery], error) {
			return c.broker.Consume(ctx, req)
		})
	if err != nil {
		return nil, err
	}
	return &Consumer{s: s, client: c, onDisconnect: opts.OnDisconnect}, nil
}

// All yields deliveries until the consumer ends. It ends quietly when ctx is done or Close was
// called; an end the caller did not ask for (ErrNotFound when the group is deleted) is yielded once
// as an error. A dropped connection is not an end (see ConsumeOptions.OnDisconnect). Breaking out
// of the loop closes the consumer.
func (c *Consumer) All() iter.Seq2[*Delivery, error] { return all(c.s, c.delivery, c.dropped) }

// Next blocks for the next delivery. At the end it returns ctx's error after a cancel or Close,
// io.EOF if the broker ended the stream cleanly, or an *Error. A dropped connection is not an
// end: Next joins the group again and waits for the next delivery.
func (c *Consumer) Next() (*Delivery, error) {
	for {
		d, err := c.s.next()
		var drop *dropped
		if errors.As(err, &drop) {
			c.dropped(drop.err)
			continue
		}
		if err != nil {
			return nil, err
		}
		return c.delivery(d), nil
	}
}

// dropped tells OnDisconnect of a drop; nothing is yielded for it.
func (c *Consumer) dropped(err error) (*Delivery, bool) {
	if c.onDisconnect != nil {
		c.onDisconnect(err)
	}
	return nil, false
}

// Close leaves the group; unsettled deliveries go back to it, and their ids become unknown.
func (c *Consumer) Close() { c.s.close() }

func (c *Consumer) delivery(d *pb.Delivery) *Delivery {
	return &Delivery{
		Message: messageFromPB(d.GetMessage()),
		ID:      d.GetDeliveryId(),
		Attempt: d.GetAttempt(),
		client:  c.client,
	}
}

// Delivery is one message handed to one consumer. Settle it with exactly one of Ack, Nack or
// Reject (Extend may come first, as often as needed) while its consumer is open; unsettled, it
// goes back to the group when the ack deadline passes or the consumer ends. The client batches
// settlements: what is settled while an Ack call is in flight goes together in the next, and an
// id the broker does not hold is [ErrUnknownDelivery]. A Delivery dropped unsettled is not nacked
// (its ID, a plain field, may have been kept to settle later through [Client.Broker]).
type Delivery struct {
	Message *Message
	// ID settles this delivery only; a redelivery of the same message gets a new one.
	ID string
	// Attempt is 1 on the first delivery of the message, 2 on the first redelivery, ...
	Attempt uint32

	client *Client
}

// Ack settles the delivery as done: the group forgets the message.
func (d *Delivery) Ack(ctx context.Context) error {
	return d.client.settler.settle(ctx, "ack", d.ID, 0)
}

// Nack gives the message back for redelivery after delay (0: at once), ahead of newer messages.
// Once the group's max_deliveries is reached, the message goes to its dead-letter topic instead.
func (d *Delivery) Nack(ctx context.Context, delay time.Duration) error {
	return d.client.settler.settle(ctx, "nack", d.ID, delay)
}

// Reject settles the delivery as poison: the message goes to the group's dead-letter topic now,
// or is dropped if the group has none.
func (d *Delivery) Reject(ctx context.Context) error {
	return d.client.settler.settle(ctx, "reject", d.ID, 0)
}

// Extend restarts the delivery's ack deadline, for work that takes longer.
func (d *Delivery) Extend(ctx context.Context) error {
	return d.client.settler.settle(ctx, "extend", d.ID, 0)
}
