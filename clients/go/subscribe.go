// Publish/subscribe from the subscriber's side: a Subscription and its events.

package switchyard

import (
	"context"
	"iter"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Event is one item of a subscription: a message, or a gap where the broker dropped messages
// because this subscriber fell behind (its buffer, --subscriber-buffer, was full).
type Event struct {
	// Message is the message, or nil for a gap.
	Message *Message
	// Missed is, for a gap, how many messages were dropped at this place.
	Missed uint64
}

// IsGap reports whether the event is a gap rather than a message.
func (e Event) IsGap() bool { return e.Message == nil }

// Subscription is a live subscription. Read it with All (or Next) from one goroutine; it ends when
// the context given to Subscribe is done, or at Close.
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
//		if err != nil { ... }           // the broker ended the subscription
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
// called; an end the caller did not ask for (the broker shutting down, a lost connection) is
// yielded once as an error. Breaking out of the loop closes the subscription.
func (s *Subscription) All() iter.Seq2[Event, error] { return all(s.s, eventFromPB) }

// Next blocks for the next event. At the end it returns ctx's error after a cancel or Close,
// io.EOF if the broker ended the stream cleanly, or an *Error.
func (s *Subscription) Next() (Event, error) {
	r, err := s.s.next()
	if err != nil {
		return Event{}, err
	}
	return eventFromPB(r), nil
}

// Close unsubscribes. It is safe to call more than once, and concurrently with Next.
func (s *Subscription) Close() { s.s.close() }

func eventFromPB(r *pb.SubscribeResponse) Event {
	if gap := r.GetGap(); gap != nil {
		return Event{Missed: gap.GetMissed()}
	}
	return Event{Message: messageFromPB(r.GetMessage())}
}
