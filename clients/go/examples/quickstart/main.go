// Command quickstart is the README's five-minute tour of the Go client: publish and subscribe, a
// work queue with acks, and request/reply, against a broker at $SWITCHYARD_ADDR (default
// 127.0.0.1:50051).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

func main() {
	addr := os.Getenv("SWITCHYARD_ADDR")
	if addr == "" {
		addr = "127.0.0.1:50051"
	}
	// Every call below is bounded by this context.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	client, err := switchyard.Dial(addr)
	check(err)
	defer client.Close()

	// 1. Publish/subscribe. The subscription is live once Subscribe returns, so the publish
	// that follows cannot be missed.
	sub, err := client.Subscribe(ctx, "orders.>")
	check(err)
	_, err = client.Publish(ctx, switchyard.Message{Topic: "orders.created", Payload: []byte(`{"sku":"A1"}`)})
	check(err)
	for ev, err := range sub.All() {
		check(err)
		fmt.Printf("subscriber got %s: %s\n", ev.Message.Topic, ev.Message.Payload)
		break // leaving the loop unsubscribes
	}

	// 2. A work queue: each message goes to one consumer of the group "workers", which must ack
	// it. A nack gives it back for another attempt, here after 100 ms.
	workers, err := client.Consume(ctx, "images.resize", "workers", &switchyard.ConsumeOptions{Prefetch: 10})
	check(err)
	_, err = client.PublishBatch(ctx, []switchyard.Message{
		{Topic: "images.resize", Payload: []byte("cat.png")},
		{Topic: "images.resize", Payload: []byte("dog.png")},
	})
	check(err)
	for done := 0; done < 2; {
		d, err := workers.Next()
		check(err)
		fmt.Printf("worker got %s (attempt %d)\n", d.Message.Payload, d.Attempt)
		if string(d.Message.Payload) == "dog.png" && d.Attempt == 1 {
			check(d.Nack(ctx, 100*time.Millisecond)) // pretend it failed once
			continue
		}
		check(d.Ack(ctx))
		done++
	}
	workers.Close()

	// 3. Request/reply. A responder is a consumer whose deliveries Serve answers; once Consume
	// returns it is attached, so the request below finds it.
	echo, err := client.Consume(ctx, "svc.echo", "echo", nil)
	check(err)
	go echo.Serve(func(ctx context.Context, req *switchyard.Message) (*switchyard.Message, error) {
		return &switchyard.Message{Payload: append([]byte("echo: "), req.Payload...)}, nil
	}, nil)
	reply, err := client.Request(ctx, switchyard.Message{Topic: "svc.echo", Payload: []byte("ping")})
	check(err)
	fmt.Printf("reply: %s\n", reply.Payload)

	_, err = client.Request(ctx, switchyard.Message{Topic: "svc.nobody", Payload: []byte("ping")})
	if errors.Is(err, switchyard.ErrNoResponders) {
		fmt.Println("nobody serves svc.nobody")
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
