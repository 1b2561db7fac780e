// Publishing: one message or an all-or-nothing batch.

package switchyard

import (
	"context"
	"fmt"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Publish routes one message to every matching subscription and group. Publishing to a topic
// nobody listens on is not an error: Published says how many took it.
//
//	p, err := client.Publish(ctx, switchyard.Message{Topic: "orders.created", Payload: []byte("A1")})
func (c *Client) Publish(ctx context.Context, msg Message) (Published, error) {
	published, err := c.PublishBatch(ctx, []Message{msg})
	if err != nil {
		return Published{}, err
	}
	return published[0], nil
}

// PublishBatch routes messages in one call, all or nothing: if any message is invalid
// (ErrInvalidArgument, whose Field is like "messages[2].topic") or any group it would go to is
// full (ErrGroupFull), none is published. The result is in the order of msgs.
func (c *Client) PublishBatch(ctx context.Context, msgs []Message) ([]Published, error) {
	req := &pb.PublishRequest{Messages: make([]*pb.Message, len(msgs))}
	for i := range msgs {
		req.Messages[i] = msgs[i].toPB()
	}
	resp, err := c.broker.Publish(ctx, req)
	if err != nil {
		return nil, wrap("publish", err)
	}
	if len(resp.GetPublished()) != len(msgs) {
		return nil, protocolError("publish", fmt.Sprintf("the broker answered for %d of %d messages",
			len(resp.GetPublished()), len(msgs)))
	}
	out := make([]Published, len(msgs))
	for i, p := range resp.GetPublished() {
		out[i] = Published{ID: p.GetId(), Subscribers: p.GetSubscribers(), Groups: p.GetGroups()}
	}
	return out, nil
}
