// Group administration: declare, list, delete.

package switchyard_test

import (
	"errors"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// A declared group exists before traffic and keeps what is published to it; declaring it again
// identically is fine, with other settings it is FailedPrecondition; it is gone after DeleteGroup.
func TestDeclareListDeleteGroups(t *testing.T) {
	client, ctx := setup(t)
	cfg := switchyard.GroupConfig{
		Topic: "images.>", Group: "resizers", Mode: switchyard.ModeExclusive,
		MaxLength: 10, MaxBytes: 100_000, AckDeadline: 5 * time.Second, MaxDeliveries: 3, DeadLetterTopic: "dead.images",
	}
	if err := client.DeclareGroup(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := client.DeclareGroup(ctx, cfg); err != nil {
		t.Fatalf("identical declare: %v", err)
	}
	other := cfg
	other.MaxLength = 11
	if err := client.DeclareGroup(ctx, other); !errors.Is(err, switchyard.ErrFailedPrecondition) {
		t.Fatalf("declare with another max_length: %v, want FailedPrecondition", err)
	}
	if err := client.DeclareGroup(ctx, switchyard.GroupConfig{Topic: "audit", Group: "all"}); err != nil {
		t.Fatal(err)
	}

	if p := publish(t, ctx, client, "images.png", "x"); p.Groups != 1 {
		t.Fatalf("published to %d groups, want 1", p.Groups)
	}
	groups, err := client.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 {
		t.Fatalf("groups: %+v", groups)
	}
	g := group(t, ctx, client, "images.>", "resizers")
	if g.Mode != switchyard.ModeExclusive || g.Ready != 1 || g.Consumers != 0 || g.Bytes == 0 || g.Bytes > 100_000 {
		t.Fatalf("declared group: %+v", g)
	}

	if err := client.DeleteGroup(ctx, "images.>", "resizers"); err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteGroup(ctx, "images.>", "resizers"); !errors.Is(err, switchyard.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if p := publish(t, ctx, client, "images.png", "y"); p.Groups != 0 {
		t.Fatalf("published to %d groups after delete, want 0", p.Groups)
	}
}
