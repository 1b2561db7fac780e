// The pipelined Requester: a burst of requests at once on one stream, no responders and timeouts
// by reason, and a stream that breaks with the broker and opens again.

package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// echo serves topic in group with a handler that echoes the payload, attached when it returns.
func echo(t *testing.T, ctx context.Context, client *switchyard.Client, topic string) {
	t.Helper()
	cons := consume(t, ctx, client, topic, "echo", &switchyard.ConsumeOptions{Prefetch: 64})
	go func() {
		_ = cons.ServeUntil(ctx, func(_ context.Context, req *switchyard.Message) (*switchyard.Message, error) {
			return &switchyard.Message{Payload: req.Payload}, nil
		}, &switchyard.ServeOptions{Concurrency: 64})
	}()
}

// 500 requests made at once on one Requester each get their own reply.
func TestRequesterPipelinesABurst(t *testing.T) {
	client, ctx := setup(t)
	echo(t, ctx, client, "rpc.burst")
	requester := client.Requester()
	defer requester.Close()
	const total = 500
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := range total {
		wg.Go(func() {
			want := fmt.Sprintf("request %d", i)
			reply, err := requester.Request(ctx, switchyard.Message{Topic: "rpc.burst", Payload: []byte(want)})
			switch {
			case err != nil:
				errs <- err
			case string(reply.Payload) != want:
				errs <- fmt.Errorf("asked %q, got %q", want, reply.Payload)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Refusals come by reason as with Client.Request: no responders at once, and a timeout when a
// subscriber takes the request but never answers.
func TestRequesterNoRespondersAndTimeout(t *testing.T) {
	client, ctx := setup(t)
	requester := client.Requester()
	defer requester.Close()
	start := time.Now()
	_, err := requester.Request(ctx, switchyard.Message{Topic: "rpc.nobody"})
	if !errors.Is(err, switchyard.ErrNoResponders) {
		t.Fatalf("nobody listening: %v, want ErrNoResponders", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("no responders took %v", waited)
	}

	sub, err := client.Subscribe(ctx, "rpc.silent")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = requester.Request(short, switchyard.Message{Topic: "rpc.silent"})
	if !errors.Is(err, switchyard.ErrTimedOut) {
		t.Fatalf("a silent subscriber: %v, want ErrTimedOut", err)
	}
	// The stream goes on after both.
	echo(t, ctx, client, "rpc.after")
	if reply, err := requester.Request(ctx, switchyard.Message{Topic: "rpc.after", Payload: []byte("x")}); err != nil || string(reply.Payload) != "x" {
		t.Fatalf("after the refusals: %v, %v", reply, err)
	}
}

// A request in flight when the broker dies fails with ErrUnavailable; once a broker is back on the
// address, the next request opens a new stream and is answered.
func TestRequesterOpensAgainAfterTheBrokerRestarts(t *testing.T) {
	ctx := testContext(t)
	first := launch(t, "127.0.0.1:0")
	client := dial(t, first.addr)
	requester := client.Requester()
	defer requester.Close()
	sub, err := client.Subscribe(ctx, "rpc.restart")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	failed := make(chan error, 1)
	go func() {
		_, err := requester.Request(ctx, switchyard.Message{Topic: "rpc.restart"})
		failed <- err
	}()
	nextMessage(t, sub) // the request is at the broker
	first.kill()
	if err := <-failed; !errors.Is(err, switchyard.ErrUnavailable) {
		t.Fatalf("the request in flight: %v, want ErrUnavailable", err)
	}
	launch(t, first.addr)
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		_, err := requester.Request(attempt, switchyard.Message{Topic: "rpc.none"})
		cancel()
		if errors.Is(err, switchyard.ErrNoResponders) {
			return // answered by the new broker
		}
		if ctx.Err() != nil {
			t.Fatalf("no answer after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
