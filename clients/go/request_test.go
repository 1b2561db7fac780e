// Request/reply: the responder helper, no responders, timeouts.

package switchyard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

func upper(_ context.Context, req *switchyard.Message) (*switchyard.Message, error) {
	return &switchyard.Message{Payload: bytes.ToUpper(req.Payload), Headers: map[string]string{"by": "upper"}}, nil
}

// Serve answers each request with the reply's correlation id, once per group, and stops cleanly
// when its context ends.
func TestRequestReplyWithServe(t *testing.T) {
	client, ctx := setup(t)
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	responder := consume(t, serveCtx, client, "svc.upper", "upper", &switchyard.ConsumeOptions{Prefetch: 4})
	served := make(chan error, 1)
	go func() { served <- responder.Serve(upper, &switchyard.ServeOptions{Concurrency: 4}) }()

	reply, err := client.Request(ctx, switchyard.Message{Topic: "svc.upper", Payload: []byte("ping")})
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Payload) != "PING" || reply.Headers["by"] != "upper" || reply.CorrelationID == "" {
		t.Fatalf("reply %+v", reply)
	}

	// Concurrent requests each get their own answer, and a correlation id of the caller's choice
	// comes back.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			id := fmt.Sprintf("corr-%d", i)
			reply, err := client.Request(ctx, switchyard.Message{Topic: "svc.upper", Payload: []byte(id), CorrelationID: id})
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if reply.CorrelationID != id || string(reply.Payload) != fmt.Sprintf("CORR-%d", i) {
				t.Errorf("request %d got %+v", i, reply)
			}
		})
	}
	wg.Wait()

	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after its context was cancelled")
	}
}

// Client.Serve joins by itself; a handler error rejects the request to the dead-letter topic and
// the requester times out.
func TestClientServeAndHandlerError(t *testing.T) {
	client, ctx := setup(t)
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "svc.fail", Group: "fail", DeadLetterTopic: "svc.dead"}); err != nil {
		t.Fatal(err)
	}
	dead := subscribe(t, ctx, client, "svc.dead")
	reported := make(chan error, 1)
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- client.Serve(serveCtx, "svc.fail", "fail",
			func(context.Context, *switchyard.Message) (*switchyard.Message, error) {
				return nil, errors.New("cannot")
			},
			&switchyard.ServeOptions{OnError: func(_ *switchyard.Message, err error) { reported <- err }})
	}()
	eventually(t, "the responder is attached", func() bool {
		return group(t, ctx, client, "svc.fail", "fail").Consumers == 1
	})

	reqCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := client.Request(reqCtx, switchyard.Message{Topic: "svc.fail", Payload: []byte("x")})
	if !errors.Is(err, switchyard.ErrTimedOut) {
		t.Fatalf("request to a failing handler: %v, want ErrTimedOut", err)
	}
	if err := <-reported; err.Error() != "cannot" {
		t.Fatalf("OnError got %v", err)
	}
	if m := nextMessage(t, dead); m.Headers["x-dead-letter-reason"] != "rejected" {
		t.Fatalf("dead letter %+v", m)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A request nobody can answer fails at once with ErrNoResponders.
func TestRequestNoResponders(t *testing.T) {
	client, ctx := setup(t)
	start := time.Now()
	_, err := client.Request(ctx, switchyard.Message{Topic: "svc.nobody", Payload: []byte("?")})
	if !errors.Is(err, switchyard.ErrNoResponders) {
		t.Fatalf("got %v, want ErrNoResponders", err)
	}
	if errors.Is(err, switchyard.ErrTimedOut) || time.Since(start) > 2*time.Second {
		t.Fatalf("no responders took %v (%v)", time.Since(start), err)
	}
}

// A request that gets no reply within its context's deadline fails with ErrTimedOut, which is
// also context.DeadlineExceeded; the deadline, not the broker's 5 s default, bounds the wait.
func TestRequestTimeout(t *testing.T) {
	client, ctx := setup(t)
	silent := subscribe(t, ctx, client, "svc.silent")

	reqCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.Request(reqCtx, switchyard.Message{Topic: "svc.silent", Payload: []byte("hello?")})
	waited := time.Since(start)
	if !errors.Is(err, switchyard.ErrTimedOut) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrTimedOut", err)
	}
	if waited < 250*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("timed out after %v, want about 300ms", waited)
	}
	// The subscriber saw the request, with the inbox it was meant to answer on.
	if m := nextMessage(t, silent); m.ReplyTo == "" || m.CorrelationID == "" {
		t.Fatalf("request as delivered: %+v", m)
	}
}

// The context's deadline, not the broker's default request timeout, bounds the wait: with a
// default of 200 ms, a reply after 600 ms still arrives within a 10 s deadline.
func TestRequestDeadlineLongerThanBrokerDefault(t *testing.T) {
	client, ctx := setup(t, "--default-request-timeout", "200ms")
	slow := consume(t, ctx, client, "svc.slow", "slow", nil)
	go func() {
		_ = slow.Serve(func(ctx context.Context, req *switchyard.Message) (*switchyard.Message, error) {
			select {
			case <-time.After(600 * time.Millisecond):
			case <-ctx.Done():
			}
			return &switchyard.Message{Payload: []byte("finally")}, nil
		}, nil)
	}()
	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reply, err := client.Request(reqCtx, switchyard.Message{Topic: "svc.slow"})
	if err != nil || string(reply.Payload) != "finally" {
		t.Fatalf("slow reply: %v, %v", reply, err)
	}
	// Without a deadline the broker's default applies. (The context is still bounded, by a
	// cancel rather than a deadline.)
	noDeadline, cancelNoDeadline := context.WithCancel(context.Background())
	defer time.AfterFunc(5*time.Second, cancelNoDeadline).Stop()
	_, err = client.Request(noDeadline, switchyard.Message{Topic: "svc.slow"})
	if !errors.Is(err, switchyard.ErrTimedOut) {
		t.Fatalf("request without a deadline: %v, want ErrTimedOut after the broker's 200 ms", err)
	}
}

// A stopped Serve takes no more requests but lets the handler still running finish: its reply
// reaches the requester, the request is acked (not handed back to the group, to be handled again),
// and only then does Serve leave the group and return nil.
func TestServeStopsGracefully(t *testing.T) {
	client, ctx := setup(t)
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "svc.slow", Group: "slow"}); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	var handled atomic.Int32
	slow := func(ctx context.Context, req *switchyard.Message) (*switchyard.Message, error) {
		handled.Add(1)
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &switchyard.Message{Payload: req.Payload}, nil
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- client.Serve(serveCtx, "svc.slow", "slow", slow, nil) }()

	replied := make(chan error, 1)
	go func() {
		reply, err := client.Request(ctx, switchyard.Message{Topic: "svc.slow", Payload: []byte("slow one")})
		if err == nil && string(reply.Payload) != "slow one" {
			err = fmt.Errorf("reply %q", reply.Payload)
		}
		replied <- err
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the handler never got the request")
	}
	stop()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while its handler was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-replied; err != nil {
		t.Fatalf("the request in hand when Serve stopped: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after a stop: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return once its handler had")
	}
	// The broker sees the consumer leave a moment after Serve closes it.
	var last switchyard.GroupInfo
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		groups, err := client.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.Topic == "svc.slow" && g.Group == "slow" {
				last = g
			}
		}
		if last.Consumers == 0 && last.Acked == 1 {
			break
		}
	}
	if last.Acked != 1 || last.Ready != 0 || last.InFlight != 0 || last.Consumers != 0 || last.Redelivered != 0 {
		t.Fatalf("after the stop the group has %+v: want the request acked, nothing held or redelivered, no consumer", last)
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("the request was handled %d times", n)
	}
}
