// Exclusive groups: one active consumer in publish order, refusal, and standby takeover.

package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// A second consumer of a taken exclusive group is refused; a standby waits, then takes over what
// the active one had not acked, in publish order.
func TestExclusiveWithStandby(t *testing.T) {
	client, ctx := setup(t)
	exclusive := &switchyard.ConsumeOptions{Mode: switchyard.ModeExclusive}
	activeCtx, cancelActive := context.WithCancel(ctx)
	defer cancelActive()
	active := consume(t, activeCtx, client, "bids", "auction", exclusive)

	_, err := client.Consume(ctx, "bids", "auction", exclusive)
	var serr *switchyard.Error
	if !errors.Is(err, switchyard.ErrFailedPrecondition) || !errors.As(err, &serr) || serr.Code != codes.FailedPrecondition {
		t.Fatalf("second exclusive consumer: %v, want FailedPrecondition", err)
	}
	if _, err := client.Consume(ctx, "bids", "auction", nil); !errors.Is(err, switchyard.ErrFailedPrecondition) {
		t.Fatalf("shared consumer of an exclusive group: %v, want FailedPrecondition", err)
	}
	standby := consume(t, ctx, client, "bids", "auction",
		&switchyard.ConsumeOptions{Mode: switchyard.ModeExclusive, Standby: true})
	if g := group(t, ctx, client, "bids", "auction"); g.Consumers != 2 || g.Mode != switchyard.ModeExclusive {
		t.Fatalf("group with a standby: %+v", g)
	}

	var want []string
	for i := range 6 {
		want = append(want, fmt.Sprint(i))
		publish(t, ctx, client, "bids", fmt.Sprint(i))
	}
	var got []string
	for i := range 6 {
		d := nextDelivery(t, active)
		got = append(got, string(d.Message.Payload))
		if i < 2 {
			if err := d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("active consumer got %v, want %v", got, want)
	}

	cancelActive()
	got = nil
	for range 4 {
		d := nextDelivery(t, standby)
		got = append(got, string(d.Message.Payload))
		if d.Attempt != 2 {
			t.Fatalf("taken over %q with attempt %d, want 2", d.Message.Payload, d.Attempt)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, want[2:]) {
		t.Fatalf("standby took over %v, want %v", got, want[2:])
	}
	publish(t, ctx, client, "bids", "6")
	if d := nextDelivery(t, standby); string(d.Message.Payload) != "6" || d.Attempt != 1 {
		t.Fatalf("after takeover got %q attempt %d", d.Message.Payload, d.Attempt)
	}
}
