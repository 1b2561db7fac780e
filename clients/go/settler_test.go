package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// Forty acks made at once go out in fewer Ack calls, each learns its own outcome, and settling
// again is ErrUnknownDelivery.
func TestSettlementsMadeTogetherGoInFewAckCalls(t *testing.T) {
	addr := startServer(t)
	ctx := testContext(t)
	var acks atomic.Int32
	counting := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/Ack") {
			acks.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	client := dial(t, addr, switchyard.WithDialOptions(grpc.WithUnaryInterceptor(counting)))
	consumer, err := client.Consume(ctx, "settle.jobs", "workers", &switchyard.ConsumeOptions{Prefetch: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for i := range 40 {
		publish(t, ctx, client, "settle.jobs", fmt.Sprint(i))
	}
	deliveries := make([]*switchyard.Delivery, 40)
	for i := range deliveries {
		if deliveries[i], err = consumer.Next(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i, d := range deliveries {
		wg.Go(func() { errs[i] = d.Ack(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	t.Logf("40 acks in %d Ack calls", acks.Load())
	if n := acks.Load(); n >= 40 {
		t.Fatalf("40 acks made at once took %d Ack calls", n)
	}
	if err := deliveries[0].Ack(ctx); !errors.Is(err, switchyard.ErrUnknownDelivery) {
		t.Fatalf("a second ack: %v, want ErrUnknownDelivery", err)
	}
}
