// Group administration: declare groups ahead of traffic, list their state, delete them.

package switchyard

import (
	"context"
	"time"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// GroupConfig is a queue group to declare. Zero values take the broker's defaults.
type GroupConfig struct {
	// Topic is the group's pattern, as for Consume.
	Topic string
	// Group is the group's name: one token (no ".", "*" or ">").
	Group string
	Mode  ConsumeMode
	// MaxLength is the most messages the group holds (waiting, delayed and in flight); a publish
	// past it fails with ErrGroupFull. 0 is the broker's --default-max-length.
	MaxLength uint32
	// MaxBytes is what the group's messages may take, counted as the broker's memory budget counts
	// them (payload plus a fixed overhead each); a publish past it fails with ErrGroupFull. 0 is no
	// limit in bytes.
	MaxBytes uint64
	// AckDeadline is the group's default time to settle a delivery (whole milliseconds); 0 is the
	// broker's --default-ack-deadline.
	AckDeadline time.Duration
	// MaxDeliveries is how many times a message is delivered before it is dead-lettered; 0 is
	// unlimited.
	MaxDeliveries uint32
	// DeadLetterTopic receives messages that ran out of deliveries or were rejected; empty
	// discards them.
	DeadLetterTopic string
}

// GroupInfo is one group's state and counters.
type GroupInfo struct {
	Topic string
	Group string
	Mode  ConsumeMode
	// Ready is how many messages wait, delayed redeliveries included.
	Ready uint64
	// InFlight is how many are delivered and not yet settled.
	InFlight uint64
	// Consumers is how many consumers are attached, standbys included.
	Consumers uint32
	// Delivered counts deliveries, redeliveries included.
	Delivered    uint64
	Acked        uint64
	Redelivered  uint64
	DeadLettered uint64
	// Bytes is what the held messages are charged, as the broker's memory budget counts them.
	Bytes uint64
}

// DeclareGroup creates a group, or succeeds if an identical one exists. One with other settings is
// ErrConflict, its Metadata naming the setting. A declared group stays until DeleteGroup.
func (c *Client) DeclareGroup(ctx context.Context, g GroupConfig) error {
	_, err := c.admin.DeclareGroup(ctx, &pb.DeclareGroupRequest{
		Topic:           g.Topic,
		Group:           g.Group,
		Mode:            g.Mode.toPB(),
		MaxLength:       g.MaxLength,
		MaxBytes:        g.MaxBytes,
		AckDeadlineMs:   millis(g.AckDeadline),
		MaxDeliveries:   g.MaxDeliveries,
		DeadLetterTopic: g.DeadLetterTopic,
	})
	return wrap("declare group", err)
}

// DeleteGroup drops the group with its messages; its consumers end with ErrNotFound. An unknown
// group is ErrNotFound.
func (c *Client) DeleteGroup(ctx context.Context, topic, group string) error {
	_, err := c.admin.DeleteGroup(ctx, &pb.DeleteGroupRequest{Topic: topic, Group: group})
	return wrap("delete group", err)
}

// ListGroups returns every group with its counters.
func (c *Client) ListGroups(ctx context.Context) ([]GroupInfo, error) {
	resp, err := c.admin.ListGroups(ctx, &pb.ListGroupsRequest{})
	if err != nil {
		return nil, wrap("list groups", err)
	}
	groups := make([]GroupInfo, 0, len(resp.GetGroups()))
	for _, g := range resp.GetGroups() {
		groups = append(groups, GroupInfo{
			Topic:        g.GetTopic(),
			Group:        g.GetGroup(),
			Mode:         modeFromPB(g.GetMode()),
			Ready:        g.GetReady(),
			InFlight:     g.GetInFlight(),
			Consumers:    g.GetConsumers(),
			Delivered:    g.GetDelivered(),
			Acked:        g.GetAcked(),
			Redelivered:  g.GetRedelivered(),
			DeadLettered: g.GetDeadLettered(),
			Bytes:        g.GetBytes(),
		})
	}
	return groups, nil
}
