// Publish/subscribe: fan-out in order, wildcards, gaps, and unsubscribing by context.

package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// Every subscriber gets every message, in the publisher's order, from single publishes and batches.
func TestFanOutToSeveralSubscribersInOrder(t *testing.T) {
	client, ctx := setup(t)
	subs := []*switchyard.Subscription{
		subscribe(t, ctx, client, "orders.created"),
		subscribe(t, ctx, client, "orders.created"),
		subscribe(t, ctx, client, "orders.*"),
	}

	var want []string
	for i := range 20 {
		payload := fmt.Sprintf("single-%d", i)
		want = append(want, payload)
		if p := publish(t, ctx, client, "orders.created", payload); p.Subscribers != 3 || p.ID == "" {
			t.Fatalf("published %+v, want an id and 3 subscribers", p)
		}
	}
	var batch []switchyard.Message
	for i := range 30 {
		payload := fmt.Sprintf("batch-%d", i)
		want = append(want, payload)
		batch = append(batch, switchyard.Message{Topic: "orders.created", Payload: []byte(payload),
			Headers: map[string]string{"n": fmt.Sprint(i)}, Key: "k"})
	}
	published, err := client.PublishBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(published) != 30 || published[0].Subscribers != 3 || published[0].ID == published[1].ID {
		t.Fatalf("batch published %+v", published)
	}

	for i, sub := range subs {
		var got []string
		for range want {
			m := nextMessage(t, sub)
			got = append(got, string(m.Payload))
			if m.Topic != "orders.created" || m.ID == "" || m.PublishedAt.IsZero() {
				t.Fatalf("subscriber %d got %+v", i, m)
			}
			if strings.HasPrefix(string(m.Payload), "batch-") && (m.Key != "k" || m.Headers["n"] == "") {
				t.Fatalf("subscriber %d lost key or headers: %+v", i, m)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("subscriber %d got\n%v\nwant\n%v", i, got, want)
		}
	}
}

// `*` matches one token, `>` one or more trailing ones, and a plain topic only itself.
func TestWildcards(t *testing.T) {
	client, ctx := setup(t)
	patterns := map[string][]string{
		"orders.*":          {"orders.created"},
		"orders.>":          {"orders.created", "orders.eu.created", "orders.eu.shipped"},
		"*.created":         {"orders.created", "payments.created"},
		"orders.*.created":  {"orders.eu.created"},
		"orders.eu.created": {"orders.eu.created"},
		">":                 {"orders", "orders.created", "orders.eu.created", "payments.created", "orders.eu.shipped"},
	}
	// Each subscriber's fence is the last message it matches: what it got before that is all it
	// will get.
	fences := map[string]string{
		"orders.*": "orders.fence", "orders.>": "orders.fence", "*.created": "fence.created",
		"orders.*.created": "orders.fence.created", "orders.eu.created": "orders.eu.created", ">": "fence",
	}
	subs := map[string]*switchyard.Subscription{}
	for pattern := range patterns {
		subs[pattern] = subscribe(t, ctx, client, pattern)
	}
	for _, topic := range patterns[">"] {
		publish(t, ctx, client, topic, "")
	}
	var fenceBatch []switchyard.Message
	for _, topic := range []string{"orders.fence", "fence.created", "orders.fence.created", "orders.eu.created", "fence"} {
		fenceBatch = append(fenceBatch, switchyard.Message{Topic: topic, Payload: []byte("fence")})
	}
	if _, err := client.PublishBatch(ctx, fenceBatch); err != nil {
		t.Fatal(err)
	}

	for pattern, want := range patterns {
		var got []string
		for {
			m := nextMessage(t, subs[pattern])
			if string(m.Payload) == "fence" {
				if m.Topic == fences[pattern] {
					break
				}
				continue
			}
			got = append(got, m.Topic)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v", pattern, got, want)
		}
	}
}

// Cancelling the subscription's context ends All quietly and unsubscribes; Close does the same.
func TestSubscribeCancelledByContext(t *testing.T) {
	client, ctx := setup(t)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := subscribe(t, subCtx, client, "ticks")
	closed := subscribe(t, ctx, client, "ticks")
	publish(t, ctx, client, "ticks", "1")

	var got []string
	for ev, err := range sub.All() {
		if err != nil {
			t.Fatalf("All yielded %v", err)
		}
		got = append(got, string(ev.Message.Payload))
		cancel()
	}
	if !slices.Equal(got, []string{"1"}) {
		t.Fatalf("got %v", got)
	}
	if _, err := sub.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v, want context.Canceled", err)
	}
	closed.Close()
	if _, err := closed.Next(); !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close: %v", err)
	}
	eventually(t, "both subscriptions are gone", func() bool {
		return publish(t, ctx, client, "ticks", "2").Subscribers == 0
	})
}

// A subscriber that falls behind gets a Gap with the exact count of what it missed.
func TestSlowSubscriberGetsGap(t *testing.T) {
	client, ctx := setup(t, "--subscriber-buffer", "8")
	sub := subscribe(t, ctx, client, "firehose")
	// Far more than the buffer and the transport's windows hold, published while nobody reads.
	const total = 2000
	payload := strings.Repeat("x", 8<<10)
	for i := 0; i < total; i += 100 {
		batch := make([]switchyard.Message, 100)
		for j := range batch {
			batch[j] = switchyard.Message{Topic: "firehose", Payload: []byte(payload)}
		}
		if _, err := client.PublishBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var messages, missed, gaps uint64
	for messages+missed < total {
		ev, err := sub.Next()
		if err != nil {
			t.Fatalf("subscription ended after %d messages and %d missed: %v", messages, missed, err)
		}
		if ev.IsGap() {
			gaps++
			missed += ev.Missed
		} else {
			messages++
		}
	}
	if gaps == 0 || messages+missed != total {
		t.Fatalf("%d messages + %d missed in %d gaps, want %d in all and a gap", messages, missed, gaps, total)
	}
	// Caught up, it gets messages again.
	publish(t, ctx, client, "firehose", "after")
	if m := nextMessage(t, sub); string(m.Payload) != "after" {
		t.Fatalf("after the gap got %q", m.Payload)
	}
}
