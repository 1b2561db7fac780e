// The broker's reasons, read from the details of real refusals: the sentinel each one picks, and
// the metadata, field and retry delay that come with it.

package switchyard_test

import (
	"errors"
	"testing"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// expectReason checks that err is an *Error with the reason and sentinel given, and that its
// metadata holds what want names; it returns the error for further checks.
func expectReason(t *testing.T, what string, err error, reason string, kind error, want map[string]string) *switchyard.Error {
	t.Helper()
	var e *switchyard.Error
	if !errors.As(err, &e) || e.Reason != reason || !errors.Is(err, kind) {
		t.Fatalf("%s: got %#v, want reason %s matching %v", what, err, reason, kind)
	}
	for key, value := range want {
		if e.Metadata[key] != value {
			t.Fatalf("%s: metadata %v, want %s=%s", what, e.Metadata, key, value)
		}
	}
	return e
}

// A request to a topic nobody serves is NO_RESPONDERS, naming the topic.
func TestReasonNoResponders(t *testing.T) {
	client, ctx := setup(t)
	_, err := client.Request(ctx, switchyard.Message{Topic: "svc.nobody"})
	expectReason(t, "request", err, "NO_RESPONDERS", switchyard.ErrNoResponders, map[string]string{"topic": "svc.nobody"})
}

// A group at its max_length is GROUP_FULL with its limit, and waiting may help: RetryAfter is set.
func TestReasonGroupFull(t *testing.T) {
	client, ctx := setup(t)
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "jobs", Group: "one", MaxLength: 1}); err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, client, "jobs", "fits")
	_, err := client.Publish(ctx, switchyard.Message{Topic: "jobs", Payload: []byte("does not")})
	e := expectReason(t, "publish", err, "GROUP_FULL", switchyard.ErrGroupFull, map[string]string{"group": "one", "max_length": "1"})
	if e.RetryAfter <= 0 || !errors.Is(err, switchyard.ErrResourceExhausted) {
		t.Fatalf("a full group: RetryAfter %v, want > 0 (%v)", e.RetryAfter, err)
	}
}

// Declaring a shared group again as exclusive is MODE_MISMATCH: ErrConflict, and still
// ErrFailedPrecondition.
func TestReasonModeMismatch(t *testing.T) {
	client, ctx := setup(t)
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "jobs", Group: "workers"}); err != nil {
		t.Fatal(err)
	}
	err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "jobs", Group: "workers", Mode: switchyard.ModeExclusive})
	expectReason(t, "declare", err, "MODE_MISMATCH", switchyard.ErrConflict, map[string]string{"group": "workers"})
	if !errors.Is(err, switchyard.ErrFailedPrecondition) {
		t.Fatalf("MODE_MISMATCH is not ErrFailedPrecondition: %v", err)
	}
}

// An empty topic is INVALID_ARGUMENT, and Field is the BadRequest's path to it.
func TestReasonInvalidArgument(t *testing.T) {
	client, ctx := setup(t)
	_, err := client.Publish(ctx, switchyard.Message{Topic: ""})
	e := expectReason(t, "publish", err, "INVALID_ARGUMENT", switchyard.ErrInvalidArgument, nil)
	if e.Field != "messages[0].topic" || e.RetryAfter != 0 {
		t.Fatalf("field %q, RetryAfter %v, want messages[0].topic and 0", e.Field, e.RetryAfter)
	}
}

// Deleting a group that does not exist is UNKNOWN_GROUP, naming the group and its topic.
func TestReasonUnknownGroup(t *testing.T) {
	client, ctx := setup(t)
	err := client.DeleteGroup(ctx, "jobs", "nobody")
	want := map[string]string{"group": "nobody", "topic": "jobs"}
	expectReason(t, "delete", err, "UNKNOWN_GROUP", switchyard.ErrNotFound, want)
}

// A second active consumer of an exclusive group is GROUP_EXCLUSIVE_TAKEN.
func TestReasonExclusiveTaken(t *testing.T) {
	client, ctx := setup(t)
	exclusive := &switchyard.ConsumeOptions{Mode: switchyard.ModeExclusive}
	consume(t, ctx, client, "bids", "auction", exclusive)
	_, err := client.Consume(ctx, "bids", "auction", exclusive)
	expectReason(t, "consume", err, "GROUP_EXCLUSIVE_TAKEN", switchyard.ErrExclusiveTaken, map[string]string{"group": "auction"})
}
