// Streams whose broker restarts: they do not end, they say where the connection dropped (a
// subscription with a gap, a consumer through OnDisconnect), and they carry on against the broker
// that comes back on the same address.

package switchyard_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// publishUntil publishes payloads "<prefix>N" until one arrives on seen (each wait 50 ms), and
// returns how many were published; publishes that fail (the broker is still starting) are not
// counted.
func publishUntil(t *testing.T, ctx context.Context, c *switchyard.Client, topic, prefix string, seen <-chan string) (int, string) {
	t.Helper()
	sent := 0
	for {
		if _, err := c.Publish(ctx, switchyard.Message{Topic: topic, Payload: []byte(prefix + strconv.Itoa(sent))}); err == nil {
			sent++
		}
		select {
		case first := <-seen:
			return sent, first
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("nothing arrived after the restart")
		}
	}
}

// A subscription whose broker restarts on the same address yields one gap with Disconnected set
// (ErrUnavailable), not an error, then subscribes again by itself: what is published once it is
// back arrives, in order, in the same range loop.
func TestSubscriptionSurvivesARestart(t *testing.T) {
	ctx := testContext(t)
	first := launch(t, "127.0.0.1:0")
	client := dial(t, first.addr)
	sub, err := client.Subscribe(ctx, "news.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	type item struct {
		event switchyard.Event
		err   error
	}
	items := make(chan item, 1024)
	go func() {
		for ev, err := range sub.All() {
			items <- item{ev, err}
		}
		close(items)
	}()
	publish(t, ctx, client, "news.a", "before")
	if got := <-items; got.err != nil || got.event.Message == nil || string(got.event.Message.Payload) != "before" {
		t.Fatalf("before the restart: %+v", got)
	}

	first.kill()
	select {
	case got := <-items:
		if got.err != nil || !got.event.IsGap() || got.event.Disconnected == nil {
			t.Fatalf("want one gap with Disconnected, got %+v", got)
		}
		if !errors.Is(got.event.Disconnected, switchyard.ErrUnavailable) {
			t.Fatalf("Disconnected is %v, want ErrUnavailable", got.event.Disconnected)
		}
	case <-ctx.Done():
		t.Fatal("no gap after the broker was killed")
	}
	launch(t, first.addr)

	messages := make(chan string, 1024)
	go func() {
		for got := range items {
			if got.err != nil || got.event.Message == nil {
				t.Errorf("after the restart, only messages: %+v", got)
				close(messages)
				return
			}
			messages <- string(got.event.Message.Payload)
		}
	}()
	sent, firstSeen := publishUntil(t, ctx, client, "news.a", "after", messages)
	n := 0
	for ; n < sent; n++ {
		if firstSeen == "after"+strconv.Itoa(n) {
			break
		}
	}
	if n == sent {
		t.Fatalf("the first message after the restart is %q", firstSeen)
	}
	publish(t, ctx, client, "news.a", "last")
	for want := n + 1; ; want++ {
		expected := "after" + strconv.Itoa(want)
		if want >= sent {
			expected = "last"
		}
		select {
		case got := <-messages:
			if got != expected {
				t.Fatalf("got %q, want %q", got, expected)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %q", expected)
		}
		if expected == "last" {
			return
		}
	}
}

// A consumer whose broker restarts on the same address does not end and yields nothing for the
// drop: it tells OnDisconnect once, joins its group again by itself, and receives what is
// published after the restart.
func TestConsumerSurvivesARestart(t *testing.T) {
	ctx := testContext(t)
	first := launch(t, "127.0.0.1:0")
	client := dial(t, first.addr)
	drops := make(chan error, 16)
	cons, err := client.Consume(ctx, "jobs.restart", "workers", &switchyard.ConsumeOptions{
		OnDisconnect: func(err error) { drops <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	deliveries := make(chan *switchyard.Delivery, 16)
	ended := make(chan error, 1)
	go func() {
		for d, err := range cons.All() {
			if err != nil {
				ended <- err
				return
			}
			deliveries <- d
		}
		ended <- nil
	}()
	publish(t, ctx, client, "jobs.restart", "before")
	var held *switchyard.Delivery
	select {
	case held = <-deliveries:
	case <-ctx.Done():
		t.Fatal("no delivery before the restart")
	}
	if string(held.Message.Payload) != "before" {
		t.Fatalf("before the restart: %q", held.Message.Payload)
	}

	first.kill()
	select {
	case err := <-drops:
		if !errors.Is(err, switchyard.ErrUnavailable) {
			t.Fatalf("OnDisconnect got %v, want ErrUnavailable", err)
		}
	case err := <-ended:
		t.Fatalf("the consumer ended (%v) instead of reconnecting", err)
	case <-ctx.Done():
		t.Fatal("OnDisconnect was not called")
	}
	launch(t, first.addr)
	// The restarted broker is empty: declare the group so it keeps what is published before the
	// consumer has joined again.
	for {
		err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "jobs.restart", Group: "workers"})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("declare the group after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := held.Ack(ctx); !errors.Is(err, switchyard.ErrUnknownDelivery) {
		t.Fatalf("acking a delivery from before the restart: %v, want ErrUnknownDelivery", err)
	}
	publish(t, ctx, client, "jobs.restart", "after")
	select {
	case d := <-deliveries:
		if string(d.Message.Payload) != "after" || d.Attempt != 1 {
			t.Fatalf("after the restart: %q attempt %d", d.Message.Payload, d.Attempt)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	case err := <-ended:
		t.Fatalf("the consumer ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no delivery after the restart")
	}
	if n := len(drops); n != 0 {
		t.Fatalf("OnDisconnect was called %d more times", n)
	}
}
