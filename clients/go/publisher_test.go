// The batching Publisher: order and an outcome per message, a refused frame answered in place,
// backpressure from a broker that does not answer, and waiting for room.

package switchyard_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// Messages published through a Publisher are routed in order, each with its own Published, and
// Flush waits for all of them.
func TestPublisherRoutesInOrderWithAnOutcomeEach(t *testing.T) {
	client, ctx := setup(t)
	sub, err := client.Subscribe(ctx, "pub.order")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publisher := client.Publisher(nil)
	const total = 1000
	pendings := make([]*switchyard.PendingPublish, total)
	for i := range total {
		pendings[i], err = publisher.Publish(ctx, switchyard.Message{Topic: "pub.order", Payload: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := publisher.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, total)
	for i, pending := range pendings {
		select {
		case <-pending.Done():
		default:
			t.Fatalf("message %d has no outcome after Flush", i)
		}
		published, err := pending.Wait(ctx)
		if err != nil || published.ID == "" || published.Subscribers != 1 {
			t.Fatalf("message %d: %+v, %v", i, published, err)
		}
		ids[i] = published.ID
	}
	for i := range total {
		m := nextMessage(t, sub)
		if string(m.Payload) != strconv.Itoa(i) || m.ID != ids[i] {
			t.Fatalf("message %d arrived as %q (id %s, want %s)", i, m.Payload, m.ID, ids[i])
		}
	}
	if err := publisher.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.Publish(ctx, switchyard.Message{Topic: "pub.order"}); !errors.Is(err, switchyard.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}

// A frame the broker refuses fails its messages with the status a unary call would get, and the
// stream goes on with the next frames.
func TestPublisherRefusesAFrameInPlace(t *testing.T) {
	client, ctx := setup(t)
	sub, err := client.Subscribe(ctx, "pub.refused")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publisher := client.Publisher(&switchyard.PublisherOptions{MaxBatch: 1})
	defer publisher.Close(ctx)
	var pendings []*switchyard.PendingPublish
	for _, topic := range []string{"pub.refused", "bad..topic", "pub.refused"} {
		pending, err := publisher.Publish(ctx, switchyard.Message{Topic: topic, Payload: []byte(topic)})
		if err != nil {
			t.Fatal(err)
		}
		pendings = append(pendings, pending)
	}
	if _, err := pendings[0].Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pendings[1].Wait(ctx); !errors.Is(err, switchyard.ErrInvalidArgument) {
		t.Fatalf("the bad topic: %v, want ErrInvalidArgument", err)
	}
	if _, err := pendings[2].Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if m := nextMessage(t, sub); m.Topic != "pub.refused" {
			t.Fatalf("got %+v", m)
		}
	}
}

// With one frame in flight and one message of queue, a broker that stops answering (SIGSTOP)
// holds the publisher back: a few messages are taken (in flight, held by the sender, queued), the
// next Publish waits until its context ends, and all of them go through once the broker runs again.
func TestPublisherBackpressure(t *testing.T) {
	ctx := testContext(t)
	b := launch(t, "127.0.0.1:0")
	client := dial(t, b.addr)
	publisher := client.Publisher(&switchyard.PublisherOptions{MaxBatch: 1, MaxInFlight: 1, QueueSize: 1})
	defer publisher.Close(ctx)
	if _, err := client.Publish(ctx, switchyard.Message{Topic: "pub.warm"}); err != nil {
		t.Fatal(err)
	}
	stop(t, b.pid)
	continued := false
	resume := func() {
		if !continued {
			continued = true
			_ = syscall.Kill(b.pid, syscall.SIGCONT)
		}
	}
	defer resume()
	var taken []*switchyard.PendingPublish
	for i := range 3 {
		bounded, cancel := context.WithTimeout(ctx, 5*time.Second)
		pending, err := publisher.Publish(bounded, switchyard.Message{Topic: "pub.held", Payload: []byte(strconv.Itoa(i))})
		cancel()
		if err != nil {
			t.Fatalf("message %d should find room (in flight, with the sender, queued): %v", i, err)
		}
		taken = append(taken, pending)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := publisher.Publish(short, switchyard.Message{Topic: "pub.held", Payload: []byte("3")})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fourth message with nothing answered: %v, want to wait until its context ends", err)
	}
	for i, pending := range taken {
		select {
		case <-pending.Done():
			t.Fatalf("message %d has an outcome while the broker is stopped", i)
		default:
		}
	}
	resume()
	for i, pending := range taken {
		if _, err := pending.Wait(ctx); err != nil {
			t.Fatalf("message %d once the broker runs again: %v", i, err)
		}
	}
	if _, err := publisher.Publish(ctx, switchyard.Message{Topic: "pub.held", Payload: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if err := publisher.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// Close returns when its context ends even if the broker never answers: what was in flight or
// queued fails with ErrClosed.
func TestPublisherCloseKeepsToItsContext(t *testing.T) {
	ctx := testContext(t)
	b := launch(t, "127.0.0.1:0")
	client := dial(t, b.addr)
	publisher := client.Publisher(&switchyard.PublisherOptions{MaxBatch: 1, MaxInFlight: 1, QueueSize: 1})
	first, err := publisher.Publish(ctx, switchyard.Message{Topic: "pub.close"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	stop(t, b.pid)
	defer func() { _ = syscall.Kill(b.pid, syscall.SIGCONT) }()
	var taken []*switchyard.PendingPublish
	for range 3 {
		pending, err := publisher.Publish(ctx, switchyard.Message{Topic: "pub.close"})
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, pending)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	started := time.Now()
	if err := publisher.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close against a stopped broker: %v, want its context's deadline", err)
	}
	if took := time.Since(started); took > 3*time.Second {
		t.Fatalf("Close took %v with a 300 ms context", took)
	}
	for i, pending := range taken {
		if _, err := pending.Wait(ctx); !errors.Is(err, switchyard.ErrClosed) {
			t.Fatalf("message %d after an abandoned Close: %v, want ErrClosed", i, err)
		}
	}
}

// With WaitForRoom, a frame for a full group waits at the broker until a consumer makes room,
// instead of failing with ErrGroupFull as it does without.
func TestPublisherWaitsForRoom(t *testing.T) {
	client, ctx := setup(t, "--max-publish-wait", "10s")
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "pub.room", Group: "capped", MaxLength: 1}); err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, client, "pub.room", "fills it")
	impatient := client.Publisher(nil)
	defer impatient.Close(ctx)
	refused, err := impatient.Publish(ctx, switchyard.Message{Topic: "pub.room", Payload: []byte("refused")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = refused.Wait(ctx)
	// The frame's refusal names what a unary call's would: the group, the message, the limit.
	expectReason(t, "without WaitForRoom", err, "GROUP_FULL", switchyard.ErrGroupFull,
		map[string]string{"group": "capped", "index": "0", "max_length": "1"})

	patient := client.Publisher(&switchyard.PublisherOptions{WaitForRoom: true})
	defer patient.Close(ctx)
	waiting, err := patient.Publish(ctx, switchyard.Message{Topic: "pub.room", Payload: []byte("waits")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting.Done():
		_, err := waiting.Wait(ctx)
		t.Fatalf("answered (%v) while the group was full", err)
	case <-time.After(300 * time.Millisecond):
	}
	cons := consume(t, ctx, client, "pub.room", "capped", nil)
	d, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if published, err := waiting.Wait(ctx); err != nil || published.Groups != 1 {
		t.Fatalf("once there was room: %+v, %v", published, err)
	}
}

// stop sends SIGSTOP to pid and waits until the process is stopped: the signal is delivered
// asynchronously, and a broker still running for a moment would answer what comes next.
func stop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command's closing parenthesis: "T" once stopped.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 0 && fields[0] == "T" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped after 5 s: %s", pid, stat)
		}
		time.Sleep(time.Millisecond)
	}
}
