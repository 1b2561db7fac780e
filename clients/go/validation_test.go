// The broker's status codes for bad input, as the client's errors.

package switchyard_test

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// expectError checks err's sentinel, gRPC code and (for InvalidArgument) the field it names.
func expectError(t *testing.T, what string, err error, kind error, code codes.Code, field string) {
	t.Helper()
	var serr *switchyard.Error
	if !errors.Is(err, kind) || !errors.As(err, &serr) {
		t.Fatalf("%s: got %v, want %v", what, err, kind)
	}
	if serr.Code != code || status.Code(err) != code {
		t.Fatalf("%s: code %v, want %v (%v)", what, serr.Code, code, err)
	}
	if serr.Field != field {
		t.Fatalf("%s: field %q, want %q (%v)", what, serr.Field, field, err)
	}
}

// Malformed input is InvalidArgument, and the error names the field; a bad batch publishes nothing.
func TestInvalidArgumentNamesTheField(t *testing.T) {
	client, ctx := setup(t, "--max-payload-bytes", "1024")
	witness := subscribe(t, ctx, client, "orders.>")

	_, err := client.Publish(ctx, switchyard.Message{Topic: "", Payload: []byte("x")})
	expectError(t, "empty topic", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "messages[0].topic")

	_, err = client.PublishBatch(ctx, []switchyard.Message{
		{Topic: "orders.ok", Payload: []byte("first")},
		{Topic: "orders.*", Payload: []byte("wildcard")},
	})
	expectError(t, "wildcard in publish", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "messages[1].topic")

	_, err = client.PublishBatch(ctx, []switchyard.Message{
		{Topic: "orders.ok"},
		{Topic: "orders.ok"},
		{Topic: "orders.big", Payload: make([]byte, 2048)},
	})
	expectError(t, "payload over the limit", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "messages[2].payload")

	_, err = client.PublishBatch(ctx, nil)
	expectError(t, "empty batch", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "messages")

	_, err = client.Subscribe(ctx, "orders.>.eu")
	expectError(t, "> not last", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "topic")

	_, err = client.Subscribe(ctx, "orders..eu")
	expectError(t, "empty token", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "topic")

	_, err = client.Consume(ctx, "jobs", "a.b", nil)
	expectError(t, "dotted group", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "group")

	_, err = client.Request(ctx, switchyard.Message{Topic: "svc.*"})
	expectError(t, "wildcard request", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "message.topic")

	err = client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "jobs.>", Group: "g", DeadLetterTopic: "jobs.dead"})
	expectError(t, "dead letters into the group's own pattern", err, switchyard.ErrInvalidArgument, codes.InvalidArgument, "dead_letter_topic")

	// None of the refused batches reached the subscriber: the first thing it sees is this.
	publish(t, ctx, client, "orders.fence", "fence")
	if m := nextMessage(t, witness); m.Topic != "orders.fence" {
		t.Fatalf("a refused batch was published in part: got %+v", m)
	}
}

// A publish that would overfill a group is ResourceExhausted and routes nothing of its batch.
func TestFullGroupIsResourceExhausted(t *testing.T) {
	client, ctx := setup(t)
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "jobs", Group: "small", MaxLength: 2}); err != nil {
		t.Fatal(err)
	}
	witness := subscribe(t, ctx, client, "audit")
	publish(t, ctx, client, "jobs", "1")
	publish(t, ctx, client, "jobs", "2")

	_, err := client.PublishBatch(ctx, []switchyard.Message{{Topic: "audit", Payload: []byte("3")}, {Topic: "jobs", Payload: []byte("3")}})
	expectError(t, "publish to a full group", err, switchyard.ErrGroupFull, codes.ResourceExhausted, "")
	if g := group(t, ctx, client, "jobs", "small"); g.Ready != 2 {
		t.Fatalf("full group holds %d, want 2", g.Ready)
	}
	publish(t, ctx, client, "audit", "fence")
	if m := nextMessage(t, witness); string(m.Payload) != "fence" {
		t.Fatalf("the refused batch was published in part: got %q", m.Payload)
	}
}

// A second active consumer of an exclusive group is FailedPrecondition.
func TestTakenExclusiveGroupIsFailedPrecondition(t *testing.T) {
	client, ctx := setup(t)
	consume(t, ctx, client, "bids", "auction", &switchyard.ConsumeOptions{Mode: switchyard.ModeExclusive})
	_, err := client.Consume(ctx, "bids", "auction", &switchyard.ConsumeOptions{Mode: switchyard.ModeExclusive})
	expectError(t, "taken exclusive group", err, switchyard.ErrFailedPrecondition, codes.FailedPrecondition, "")
}

// Deleting a group that does not exist is NotFound.
func TestDeleteUnknownGroupIsNotFound(t *testing.T) {
	client, ctx := setup(t)
	err := client.DeleteGroup(ctx, "jobs", "nobody")
	expectError(t, "delete unknown group", err, switchyard.ErrNotFound, codes.NotFound, "")
}
