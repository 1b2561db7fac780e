// Messages as the client sees them, and their conversion to and from the wire.

package switchyard

import (
	"math"
	"time"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Message is one message. To publish, set Topic and Payload, and any of Headers, Key, ReplyTo and
// CorrelationID; the broker sets ID and PublishedAt.
type Message struct {
	// ID is the broker's UUID v7 for the message; ignored when publishing.
	ID string
	// Topic is dot-separated tokens, "orders.eu.created"; no wildcards when publishing.
	Topic   string
	Payload []byte
	Headers map[string]string
	// Key is optional; the broker keeps and delivers it.
	Key string
	// ReplyTo is the topic a responder answers on; a request gets it from the broker.
	ReplyTo string
	// CorrelationID pairs a reply with its request.
	CorrelationID string
	// PublishedAt is the broker's clock when it accepted the message; ignored when publishing.
	PublishedAt time.Time
}

// Published is what the broker did with one published message.
type Published struct {
	ID string
	// Subscribers is how many subscriptions (and waiting requests) the message was offered to.
	Subscribers uint32
	// Groups is how many queue groups stored a copy.
	Groups uint32
}

func (m *Message) toPB() *pb.Message {
	return &pb.Message{
		Topic:         m.Topic,
		Payload:       m.Payload,
		Headers:       m.Headers,
		Key:           m.Key,
		ReplyTo:       m.ReplyTo,
		CorrelationId: m.CorrelationID,
	}
}

func messageFromPB(m *pb.Message) *Message {
	if m == nil {
		return &Message{}
	}
	var at time.Time
	if m.GetPublishedAt() != nil {
		at = m.GetPublishedAt().AsTime()
	}
	return &Message{
		ID:            m.GetId(),
		Topic:         m.GetTopic(),
		Payload:       m.GetPayload(),
		Headers:       m.GetHeaders(),
		Key:           m.GetKey(),
		ReplyTo:       m.GetReplyTo(),
		CorrelationID: m.GetCorrelationId(),
		PublishedAt:   at,
	}
}

// millis is a duration in the broker's whole milliseconds, rounded up so that a short positive
// duration does not become 0 (which the broker reads as "its default"). A negative duration is 0;
// one past the wire's range is the largest value, which the broker then refuses as too long.
func millis(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(ms)
}
