// The test harness: a real switchyard server per test, on 127.0.0.1:0, killed at the end. The
// server names the port the kernel gave it in its ready file: no port is found free and released
// for another process to take, and no log line is parsed.

package switchyard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// testTimeout bounds each test's waits: every stream and call of a test runs under a context
// that ends this long after the test starts.
const testTimeout = 20 * time.Second

// serverBinary is the switchyard binary under test, from SWITCHYARD_BIN. Without it the tests skip
// on a developer's machine and fail in CI (CI=true), where a skip would hide that nothing ran.
func serverBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SWITCHYARD_BIN")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SWITCHYARD_BIN is not set: CI must test against the switchyard binary")
		}
		t.Skip("SWITCHYARD_BIN is not set; build the server (cargo build) and point it at target/debug/switchyard")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("SWITCHYARD_BIN: %v", err)
	}
	return bin
}

// lockedBuffer collects the server's log; the process writes it while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ready is what the server writes to its --ready-file once it serves.
type ready struct {
	Listen string `json:"listen"`
	Pid    int    `json:"pid"`
}

// startServer runs the broker with extra flags and returns its address. The server is killed when
// the test ends, and its log is shown if the test failed.
func startServer(t *testing.T, flags ...string) string {
	t.Helper()
	return launch(t, "127.0.0.1:0", flags...).addr
}

// broker is one running broker of a test.
type broker struct {
	addr string
	pid  int
	// kill stops it with SIGKILL and waits for it to exit; later calls do nothing.
	kill func()
}

// launch runs the broker listening on listen ("127.0.0.1:0" for a port of the kernel's choice, or
// the address of one killed before, to restart it), with extra flags.
func launch(t *testing.T, listen string, flags ...string) *broker {
	t.Helper()
	bin := serverBinary(t)
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	var log lockedBuffer
	args := append([]string{"serve", "--listen", listen, "--ready-file", readyFile}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &log
	cmd.Stderr = &log
	cmd.Env = append(cleanEnvironment(), "RUST_LOG=info", "NO_COLOR=1")
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Errorf("switchyard (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
			}
		})
	}
	t.Cleanup(func() {
		kill()
		if t.Failed() {
			t.Logf("switchyard log:\n%s", log.String())
		}
	})
	r, err := waitReady(readyFile, exited)
	if err != nil {
		t.Fatalf("switchyard did not start: %v\n%s", err, log.String())
	}
	if r.Pid != cmd.Process.Pid {
		t.Fatalf("the ready file names pid %d, not %d", r.Pid, cmd.Process.Pid)
	}
	return &broker{addr: r.Listen, pid: cmd.Process.Pid, kill: kill}
}

// cleanEnvironment is this process's environment without SWITCHYARD_* settings, so the server runs
// as the test says wherever the suite runs.
func cleanEnvironment() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHYARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady waits (at most 15 s) for the server's ready file, or for the server to exit. The server
// writes the file beside its path and renames it, so once it exists it is whole.
func waitReady(path string, exited <-chan error) (ready, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		text, err := os.ReadFile(path)
		if err == nil {
			var r ready
			if err := json.Unmarshal(text, &r); err != nil {
				return ready{}, fmt.Errorf("the ready file %s: %v: %q", path, err, text)
			}
			return r, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return ready{}, fmt.Errorf("read the ready file: %v", err)
		}
		select {
		case err := <-exited:
			return ready{}, fmt.Errorf("the server exited before it was ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return ready{}, fmt.Errorf("no ready file %s after 15 s", path)
		}
	}
}

// setup starts a server with flags and returns a client of it and a context that bounds the test.
func setup(t *testing.T, flags ...string) (*switchyard.Client, context.Context) {
	t.Helper()
	return dial(t, startServer(t, flags...)), testContext(t)
}

// dial makes a client of addr with opts, closed when the test ends.
func dial(t *testing.T, addr string, opts ...switchyard.Option) *switchyard.Client {
	t.Helper()
	client, err := switchyard.Dial(addr, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// testContext ends testTimeout after it is made, or when the test ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func publish(t *testing.T, ctx context.Context, c *switchyard.Client, topic, payload string) switchyard.Published {
	t.Helper()
	p, err := c.Publish(ctx, switchyard.Message{Topic: topic, Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	return p
}

func subscribe(t *testing.T, ctx context.Context, c *switchyard.Client, pattern string) *switchyard.Subscription {
	t.Helper()
	sub, err := c.Subscribe(ctx, pattern)
	if err != nil {
		t.Fatalf("subscribe %s: %v", pattern, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

func consume(t *testing.T, ctx context.Context, c *switchyard.Client, topic, group string, opts *switchyard.ConsumeOptions) *switchyard.Consumer {
	t.Helper()
	cons, err := c.Consume(ctx, topic, group, opts)
	if err != nil {
		t.Fatalf("consume %s/%s: %v", topic, group, err)
	}
	t.Cleanup(cons.Close)
	return cons
}

// nextMessage reads the next event, which must be a message; the wait is bounded by the
// subscription's context.
func nextMessage(t *testing.T, sub *switchyard.Subscription) *switchyard.Message {
	t.Helper()
	ev, err := sub.Next()
	if err != nil {
		t.Fatalf("subscription ended: %v", err)
	}
	if ev.IsGap() {
		t.Fatalf("got a gap of %d, want a message", ev.Missed)
	}
	return ev.Message
}

func nextDelivery(t *testing.T, cons *switchyard.Consumer) *switchyard.Delivery {
	t.Helper()
	d, err := cons.Next()
	if err != nil {
		t.Fatalf("consumer ended: %v", err)
	}
	return d
}

// group returns the counters of one group from ListGroups.
func group(t *testing.T, ctx context.Context, c *switchyard.Client, topic, name string) switchyard.GroupInfo {
	t.Helper()
	groups, err := c.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	for _, g := range groups {
		if g.Topic == topic && g.Group == name {
			return g
		}
	}
	t.Fatalf("group %s/%s not listed in %+v", topic, name, groups)
	return switchyard.GroupInfo{}
}

// eventually polls cond every 20 ms until it holds, failing the test after 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, still not: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
