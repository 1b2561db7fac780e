// Publish/subscribe from the subscriber's side: a Subscription and its events.

package switchyard

import (
	"context"
	"errors"
	"iter"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Event is one item of a subscription: a message, or a gap where messages were lost: the broker
// dropped them because this subscriber fell behind (its buffer, --subscriber-buffer, was full), or
// the connection dropped and the subscription is being renewed.
type Event struct {
	// Message is the message, or nil for a gap.
	Message *Message
	// Missed is, for a gap of the broker's, how many messages were dropped at this place.
	Missed uint64
	// Disconnected is, for a gap where the connection dropped, why (an *Error, ErrUnavailable
	// usually). The subscription subscribes again by itself, with backoff; what is published until
	// it is back is not seen, and nobody counts it, so Missed is 0.
	Disconnected error
}

// IsGap reports whether the event is a gap rather than a message.
func (e Event) IsGap() bool { return e.Message == nil }

// Subscription is a live subscription. Read it with All (or Next) from one goroutine; it ends when
// the context given to Subscribe is done, or at Close. When the connection drops, it yields a gap
// with Disconnected set and subscribes again by itself.
type Subscription struct {
	s *stream[pb.SubscribeResponse]
}

// Subscribe subscribes to pattern ("orders.>", "*.created": "*" is one token, ">" as the last
// token one or more). When Subscribe returns, the subscription is active: every message published
// after that reaches it, in each publisher's order. Cancelling ctx, or Close, unsubscribes.
//
//	sub, err := client.Subscribe(ctx, "orders.>")
//	if err != nil { ... }
//	for ev, err := range sub.All() {
//		if err != nil { ... }           // the broker ended the subscription for good
//		if ev.IsGap() { log.Printf("missed %d", ev.Missed); continue }
//		fmt.Println(ev.Message.Topic, string(ev.Message.Payload))
//	}
func (c *Client) Subscribe(ctx context.Context, pattern string) (*Subscription, error) {
	s, err := openStream(ctx, "subscribe",
		func(ctx context.Context) (grpc.ServerStreamingClient[pb.SubscribeResponse], error) {
			return c.broker.Subscribe(ctx, &pb.SubscribeRequest{Topic: pattern})
		})
	if err != nil {
		return nil, err
	}
	return &Subscription{s: s}, nil
}

// All yields events until the subscription ends. It ends quietly when ctx is done or Close was
// called; an end the caller did not ask for (a refusal by the broker) is yielded once as an error.
// A dropped connection is not an end: it is a gap with Disconnected set. Breaking out of the loop
// closes the subscription.
func (s *Subscription) All() iter.Seq2[Event, error] { return all(s.s, eventFromPB, disconnected) }

// Next blocks for the next event. At the end it returns ctx's error after a cancel or Close,
// io.EOF if the broker ended the stream cleanly, or an *Error. Where the connection dropped, it
// returns a gap with Disconnected set, and the next call subscribes again first.
func (s *Subscription) Next() (Event, error) {
	r, err := s.s.next()
	var drop *dropped
	if errors.As(err, &drop) {
		event, _ := disconnected(drop.err)
		return event, nil
	}
	if err != nil {
		return Event{}, err
	}
	return eventFromPB(r), nil
}

// disconnected is the gap where the connection dropped with err.
func disconnected(err error) (Event, bool) { return Event{Disconnected: err}, true }

// Close unsubscribes. It is safe to call more than once, and concurrently with Next.
func (s *Subscription) Close() { s.s.close() }

func eventFromPB(r *pb.SubscribeResponse) Event {
	if gap := r.GetGap(); gap != nil {
		return Event{Missed: gap.GetMissed()}
	}
	return Event{Message: messageFromPB(r.GetMessage())}
}
