// Work queues: competing consumers, redelivery, nack with delay, ack deadlines, dead letters.

package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// Consumers of one group get disjoint sets of the messages that together are all of them.
func TestCompetingConsumersGetDisjointSets(t *testing.T) {
	client, ctx := setup(t)
	const consumers, perConsumer = 3, 10
	var cons []*switchyard.Consumer
	for range consumers {
		// Each holds at most perConsumer unacked, and acks nothing until all are out, so every
		// consumer must take a share.
		cons = append(cons, consume(t, ctx, client, "jobs", "workers", &switchyard.ConsumeOptions{Prefetch: perConsumer}))
	}
	var batch []switchyard.Message
	for i := range consumers * perConsumer {
		batch = append(batch, switchyard.Message{Topic: "jobs", Payload: []byte(fmt.Sprint(i))})
	}
	published, err := client.PublishBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if published[0].Groups != 1 || published[0].Subscribers != 0 {
		t.Fatalf("published %+v, want 1 group", published[0])
	}

	owner := map[string]int{}
	var held [][]*switchyard.Delivery
	for i, c := range cons {
		var mine []*switchyard.Delivery
		for range perConsumer {
			d := nextDelivery(t, c)
			if prev, taken := owner[string(d.Message.Payload)]; taken {
				t.Fatalf("message %s went to consumer %d and %d", d.Message.Payload, prev, i)
			}
			owner[string(d.Message.Payload)] = i
			if d.Attempt != 1 {
				t.Fatalf("attempt %d, want 1", d.Attempt)
			}
			mine = append(mine, d)
		}
		held = append(held, mine)
	}
	if len(owner) != consumers*perConsumer {
		t.Fatalf("%d distinct messages delivered, want %d", len(owner), consumers*perConsumer)
	}
	for _, mine := range held {
		for _, d := range mine {
			if err := d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	g := group(t, ctx, client, "jobs", "workers")
	if g.Acked != consumers*perConsumer || g.Ready != 0 || g.InFlight != 0 || g.Consumers != consumers || g.Redelivered != 0 {
		t.Fatalf("group after acks: %+v", g)
	}
	if err := held[0][0].Ack(ctx); !errors.Is(err, switchyard.ErrUnknownDelivery) {
		t.Fatalf("second ack: %v, want ErrUnknownDelivery", err)
	}
}

// What a consumer held unacked goes to another consumer when its stream is cancelled, as a
// new delivery with the next attempt, and the old delivery id is then unknown.
func TestRedeliveryAfterConsumerCancelled(t *testing.T) {
	client, ctx := setup(t)
	firstCtx, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	first := consume(t, firstCtx, client, "jobs", "workers", &switchyard.ConsumeOptions{Prefetch: 1})
	publish(t, ctx, client, "jobs", "a")
	d1 := nextDelivery(t, first)

	second := consume(t, ctx, client, "jobs", "workers", nil)
	cancelFirst()
	d2 := nextDelivery(t, second)
	if d2.Message.ID != d1.Message.ID || string(d2.Message.Payload) != "a" || d2.Attempt != 2 || d2.ID == d1.ID {
		t.Fatalf("redelivered %+v (message %+v) after %+v", d2, d2.Message, d1)
	}
	if err := d1.Ack(ctx); !errors.Is(err, switchyard.ErrUnknownDelivery) {
		t.Fatalf("ack of the cancelled consumer's delivery: %v, want ErrUnknownDelivery", err)
	}
	if err := d2.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if g := group(t, ctx, client, "jobs", "workers"); g.Redelivered != 1 || g.Acked != 1 || g.Delivered != 2 {
		t.Fatalf("group: %+v", g)
	}
}

// A nacked message comes back after its delay, with the next attempt, and does not hold back
// the messages behind it.
func TestNackWithDelay(t *testing.T) {
	client, ctx := setup(t)
	cons := consume(t, ctx, client, "jobs", "workers", nil)
	publish(t, ctx, client, "jobs", "a")
	a := nextDelivery(t, cons)
	// Long enough that "b" is delivered well within it on a loaded machine: the test checks the
	// order of events around the delay, not how fast the broker is.
	const delay = 2 * time.Second
	nacked := time.Now()
	if err := a.Nack(ctx, delay); err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, client, "jobs", "b")
	b := nextDelivery(t, cons)
	if string(b.Message.Payload) != "b" {
		t.Fatalf("got %q while a waits out its delay, want b", b.Message.Payload)
	}
	again := nextDelivery(t, cons)
	waited := time.Since(nacked)
	if string(again.Message.Payload) != "a" || again.Attempt != 2 || again.ID == a.ID {
		t.Fatalf("after the delay got %q attempt %d", again.Message.Payload, again.Attempt)
	}
	// The broker starts the delay when it gets the nack, after nacked.
	if waited < delay {
		t.Fatalf("redelivered after %v, want at least %v", waited, delay)
	}
	for _, d := range []*switchyard.Delivery{b, again} {
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A delivery not settled within the ack deadline comes back; Extend restarts the deadline.
func TestAckDeadlineAndExtend(t *testing.T) {
	client, ctx := setup(t)
	cons := consume(t, ctx, client, "jobs", "workers", &switchyard.ConsumeOptions{AckDeadline: 300 * time.Millisecond})
	publish(t, ctx, client, "jobs", "late")
	first := nextDelivery(t, cons)
	again := nextDelivery(t, cons) // the deadline passes unsettled
	if again.Message.ID != first.Message.ID || again.Attempt != 2 {
		t.Fatalf("after the deadline got attempt %d of %s", again.Attempt, again.Message.ID)
	}
	if err := first.Ack(ctx); !errors.Is(err, switchyard.ErrUnknownDelivery) {
		t.Fatalf("ack after the deadline: %v, want ErrUnknownDelivery", err)
	}
	if err := again.Ack(ctx); err != nil {
		t.Fatal(err)
	}

	// The check happens between the original deadline (at the latest a deadline after the delivery
	// arrived) and the extended one (at the earliest a deadline after the extension was sent): a
	// window as wide as the wait before extending, whatever the machine's speed.
	const deadline = 3 * time.Second
	const beforeExtending = 1500 * time.Millisecond
	slow := consume(t, ctx, client, "slow", "workers", &switchyard.ConsumeOptions{AckDeadline: deadline})
	publish(t, ctx, client, "slow", "work")
	d := nextDelivery(t, slow)
	received := time.Now()
	time.Sleep(beforeExtending)
	extendSent := time.Now()
	if err := d.Extend(ctx); err != nil {
		t.Fatalf("extend %v after the delivery, within its %v deadline: %v", extendSent.Sub(received), deadline, err)
	}
	originalPassed := received.Add(deadline)
	time.Sleep(time.Until(originalPassed.Add(extendSent.Sub(received) / 2)))
	if err := d.Ack(ctx); err != nil {
		t.Fatalf("ack %v after the delivery, past the first deadline, within the extended one: %v", time.Since(received), err)
	}
}

// After max_deliveries, a failing message goes to the dead-letter topic with its original id and
// the x-dead-letter headers; a rejected one goes there at once.
func TestDeadLetterAfterMaxDeliveries(t *testing.T) {
	client, ctx := setup(t)
	err := client.DeclareGroup(ctx, switchyard.GroupConfig{
		Topic: "images.resize", Group: "workers", MaxDeliveries: 2, DeadLetterTopic: "images.dead",
	})
	if err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, ctx, client, "images.dead")
	cons := consume(t, ctx, client, "images.resize", "workers", nil)
	original := publish(t, ctx, client, "images.resize", "poison")

	for attempt := uint32(1); attempt <= 2; attempt++ {
		d := nextDelivery(t, cons)
		if d.Attempt != attempt || d.Message.ID != original.ID {
			t.Fatalf("delivery %+v, want attempt %d of %s", d, attempt, original.ID)
		}
		if err := d.Nack(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	m := nextMessage(t, dead)
	want := map[string]string{
		"x-dead-letter-reason": "max-deliveries", "x-original-topic": "images.resize",
		"x-dead-letter-group": "workers", "x-delivery-attempts": "2",
	}
	for k, v := range want {
		if m.Headers[k] != v {
			t.Errorf("dead letter header %s = %q, want %q (headers %v)", k, m.Headers[k], v, m.Headers)
		}
	}
	if m.ID != original.ID || string(m.Payload) != "poison" || m.Topic != "images.dead" {
		t.Fatalf("dead letter %+v", m)
	}

	rejected := publish(t, ctx, client, "images.resize", "bad")
	d := nextDelivery(t, cons)
	if err := d.Reject(ctx); err != nil {
		t.Fatal(err)
	}
	m = nextMessage(t, dead)
	if m.ID != rejected.ID || m.Headers["x-dead-letter-reason"] != "rejected" {
		t.Fatalf("rejected dead letter %+v", m)
	}
	if g := group(t, ctx, client, "images.resize", "workers"); g.DeadLettered != 2 || g.Ready != 0 || g.InFlight != 0 {
		t.Fatalf("group: %+v", g)
	}
}

// Deleting a group ends its consumers with ErrNotFound.
func TestDeletedGroupEndsConsumers(t *testing.T) {
	client, ctx := setup(t)
	cons := consume(t, ctx, client, "jobs", "workers", nil)
	if err := client.DeleteGroup(ctx, "jobs", "workers"); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for _, err := range cons.All() {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], switchyard.ErrNotFound) {
		t.Fatalf("All yielded %v, want one ErrNotFound", errs)
	}
	groups, err := client.ListGroups(ctx)
	if err != nil || len(groups) != 0 {
		t.Fatalf("groups after delete: %v, %v", groups, err)
	}
}
