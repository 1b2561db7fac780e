// TLS, mutual TLS and bearer tokens against a broker started with them: what works, and how each
// refusal reaches the caller.

package switchyard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	switchyard "github.com/switchyard/switchyard/clients/go"
)

// The token file of these tests: an admin, and a token that may subscribe but publish nothing.
const tokenFile = `{"tokens": [
	{"name": "ops", "token": "ops-secret", "admin": true},
	{"name": "reader", "token": "reader-secret", "publish": {"allow": []}}
]}`

// startSecureServer runs a broker with TLS (mutual TLS when clientCA is true) and the token file.
func startSecureServer(t *testing.T, pki *testPKI, clientCA bool) string {
	t.Helper()
	auth := writeFile(t, t.TempDir(), "tokens.json", []byte(tokenFile))
	return startServer(t, append(pki.serverFlags(clientCA), "--auth-file", auth)...)
}

// roundtrip subscribes, publishes and reads the message back: the token rides on the stream and on
// the unary call alike.
func roundtrip(t *testing.T, ctx context.Context, c *switchyard.Client) {
	t.Helper()
	sub := subscribe(t, ctx, c, "secure.>")
	publish(t, ctx, c, "secure.hello", "over tls")
	if m := nextMessage(t, sub); string(m.Payload) != "over tls" {
		t.Fatalf("got %q, want %q", m.Payload, "over tls")
	}
}

// handshakeFailed checks that a call failed with ErrUnavailable because of the TLS handshake, for
// the reason named by why (words of crypto/tls).
func handshakeFailed(t *testing.T, err error, why string) {
	t.Helper()
	if !errors.Is(err, switchyard.ErrUnavailable) || !strings.Contains(err.Error(), why) {
		t.Fatalf("the call returned %v, want ErrUnavailable saying %q", err, why)
	}
}

// TLS with the broker's CA and a known token: publish, subscribe and admin calls work.
func TestTLSWithToken(t *testing.T) {
	pki := newTestPKI(t)
	addr := startSecureServer(t, pki, false)
	ctx := testContext(t)
	c := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{CAPEM: pki.caPEM}), switchyard.WithToken("ops-secret"))
	roundtrip(t, ctx, c)
	if _, err := c.ListGroups(ctx); err != nil {
		t.Fatalf("an admin token lists groups: %v", err)
	}
}

// No token, or one the broker does not know, is ErrUnauthenticated (reason UNAUTHENTICATED), on
// unary calls and streams.
func TestMissingOrWrongTokenIsUnauthenticated(t *testing.T) {
	pki := newTestPKI(t)
	addr := startSecureServer(t, pki, false)
	ctx := testContext(t)
	tlsOpt := switchyard.WithTLS(switchyard.TLSConfig{CAPEM: pki.caPEM})
	for name, c := range map[string]*switchyard.Client{
		"no token":    dial(t, addr, tlsOpt),
		"wrong token": dial(t, addr, tlsOpt, switchyard.WithToken("not-a-token")),
	} {
		_, err := c.Publish(ctx, switchyard.Message{Topic: "secure.x"})
		var e *switchyard.Error
		if !errors.Is(err, switchyard.ErrUnauthenticated) || !errors.As(err, &e) || e.Reason != "UNAUTHENTICATED" {
			t.Errorf("%s: publish returned %#v, want ErrUnauthenticated with its reason", name, err)
		}
		if _, err := c.Subscribe(ctx, "secure.>"); !errors.Is(err, switchyard.ErrUnauthenticated) {
			t.Errorf("%s: subscribe returned %v, want ErrUnauthenticated", name, err)
		}
	}
}

// A known token that may not do something is ErrPermissionDenied naming the field: PERMISSION_DENIED
// with the token and topic, or NOT_ADMIN for an admin call.
func TestForbiddenIsPermissionDenied(t *testing.T) {
	pki := newTestPKI(t)
	addr := startSecureServer(t, pki, false)
	ctx := testContext(t)
	c := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{CAPEM: pki.caPEM}), switchyard.WithToken("reader-secret"))
	subscribe(t, ctx, c, "secure.>")
	_, err := c.Publish(ctx, switchyard.Message{Topic: "secure.x"})
	var e *switchyard.Error
	if !errors.Is(err, switchyard.ErrPermissionDenied) || !errors.As(err, &e) || e.Field != "messages[0].topic" ||
		e.Reason != "PERMISSION_DENIED" || e.Metadata["token"] != "reader" || e.Metadata["topic"] != "secure.x" {
		t.Fatalf("publish returned %#v, want PERMISSION_DENIED on messages[0].topic", err)
	}
	_, err = c.ListGroups(ctx)
	if !errors.Is(err, switchyard.ErrPermissionDenied) || !errors.As(err, &e) || e.Reason != "NOT_ADMIN" {
		t.Fatalf("list groups returned %#v, want ErrPermissionDenied with NOT_ADMIN", err)
	}
}

// ServerName is what the certificate is checked against: "localhost" is in it, another name is not.
func TestTLSServerName(t *testing.T) {
	pki := newTestPKI(t)
	addr := startSecureServer(t, pki, false)
	ctx := testContext(t)
	token := switchyard.WithToken("ops-secret")
	good := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{CAPEM: pki.caPEM, ServerName: "localhost"}), token)
	publish(t, ctx, good, "secure.named", "ok")
	bad := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{CAPEM: pki.caPEM, ServerName: "elsewhere.example"}), token)
	_, err := bad.Publish(ctx, switchyard.Message{Topic: "secure.named"})
	handshakeFailed(t, err, "not elsewhere.example")
}

// Without the broker's CA, the system's roots are used, and they do not trust a test CA.
func TestTLSWithoutCAUsesSystemRoots(t *testing.T) {
	pki := newTestPKI(t)
	addr := startSecureServer(t, pki, false)
	c := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{}), switchyard.WithToken("ops-secret"))
	_, err := c.Publish(testContext(t), switchyard.Message{Topic: "secure.x"})
	handshakeFailed(t, err, "unknown authority")
}

// A broker with --tls-client-ca serves a client with a certificate its CA signed, and refuses one
// without.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	addr := startSecureServer(t, pki, true)
	ctx := testContext(t)
	token := switchyard.WithToken("ops-secret")
	with := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{
		CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: pki.clientKey,
	}), token)
	roundtrip(t, ctx, with)
	without := dial(t, addr, switchyard.WithTLS(switchyard.TLSConfig{CAPEM: pki.caPEM}), token)
	// Only the code is checked: in TLS 1.3 the client's side of the handshake is done before the
	// broker refuses it, so the client may read the broker's alert ("certificate required") or just
	// find the socket closed ("broken pipe"), as the timing falls.
	_, err := without.Publish(ctx, switchyard.Message{Topic: "secure.x"})
	if !errors.Is(err, switchyard.ErrUnavailable) {
		t.Fatalf("without a client certificate: publish returned %v, want ErrUnavailable", err)
	}
}

// A token over plaintext works: the broker allows it (on loopback it is the usual setup).
func TestTokenOverPlaintext(t *testing.T) {
	addr := startServer(t, "--auth-token", "plain-secret")
	ctx := testContext(t)
	roundtrip(t, ctx, dial(t, addr, switchyard.WithToken("plain-secret")))
	if _, err := dial(t, addr).Publish(ctx, switchyard.Message{Topic: "secure.x"}); !errors.Is(err, switchyard.ErrUnauthenticated) {
		t.Fatalf("no token: publish returned %v, want ErrUnauthenticated", err)
	}
}

// Options that cannot be used fail Dial with ErrInvalidArgument naming the option; nothing is dialled.
func TestDialRefusesBadOptions(t *testing.T) {
	pki := newTestPKI(t)
	for field, opt := range map[string]switchyard.Option{
		"tls.ca":   switchyard.WithTLS(switchyard.TLSConfig{CAPEM: []byte("not pem")}),
		"tls.cert": switchyard.WithTLS(switchyard.TLSConfig{CertPEM: pki.clientCertPEM}),
		"token":    switchyard.WithToken("two\nlines"),
	} {
		_, err := switchyard.Dial("127.0.0.1:1", opt)
		var e *switchyard.Error
		if !errors.Is(err, switchyard.ErrInvalidArgument) || !errors.As(err, &e) || e.Field != field {
			t.Errorf("%s: Dial returned %#v, want ErrInvalidArgument on %s", field, err, field)
		}
	}
	if _, err := switchyard.Dial("127.0.0.1:1", switchyard.WithToken("")); !errors.Is(err, switchyard.ErrInvalidArgument) {
		t.Errorf("an empty token: Dial returned %v, want ErrInvalidArgument", err)
	}
}
