// The options of Dial: TLS (mutual TLS included), the bearer token, and raw gRPC dial options.

package switchyard

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Option configures Dial: [WithTLS], [WithToken], [WithDialOptions].
type Option func(*dialConfig)

// TLSConfig is how the client speaks TLS to a broker started with --tls-cert and --tls-key. The
// zero value is valid: it trusts the system's roots and presents no certificate.
type TLSConfig struct {
	// CAPEM is the PEM text of the CA certificates that signed the broker's certificate. Empty, the
	// system's trust roots are used.
	CAPEM []byte
	// CertPEM and KeyPEM are the client's certificate chain and its private key, in PEM, for a
	// broker started with --tls-client-ca (mutual TLS). Give both or neither.
	CertPEM []byte
	KeyPEM  []byte
	// ServerName is the name the broker's certificate is checked against, when it is not the host of
	// the target (dialling an IP address whose certificate names only "broker.internal", say).
	ServerName string
}

// WithTLS makes the connection TLS, checked as cfg says, instead of plaintext.
func WithTLS(cfg TLSConfig) Option {
	return func(c *dialConfig) { c.tls = &cfg }
}

// WithToken sends "authorization: Bearer <token>" on every call, streams included, for a broker
// started with --auth-token or --auth-file (docs/security.md). Without WithTLS the token crosses
// the connection in clear text: the broker allows that, which is fine to a broker on loopback, but
// anyone on the path between two hosts can read it and use it.
func WithToken(token string) Option {
	return func(c *dialConfig) { c.token = token; c.hasToken = true }
}

// WithDialOptions passes gRPC dial options through, after the ones the other options make, so they
// win: grpc.WithTransportCredentials(credentials.NewTLS(cfg)) replaces the TLS of WithTLS (or the
// plaintext default) with a tls.Config of your own, for instance.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *dialConfig) { c.grpc = append(c.grpc, opts...) }
}

// dialConfig is what the options collect, turned into gRPC dial options by grpcOptions.
type dialConfig struct {
	tls *TLSConfig
	// hasToken tells WithToken("") (an error) from no token at all.
	hasToken bool
	token    string
	grpc     []grpc.DialOption
}

// grpcOptions are the dial options for c, or an ErrInvalidArgument naming the option at fault
// ("tls.ca", "tls.cert", "token").
func (c *dialConfig) grpcOptions() ([]grpc.DialOption, error) {
	transport := insecure.NewCredentials()
	if c.tls != nil {
		cfg, err := c.tls.build()
		if err != nil {
			return nil, err
		}
		transport = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if c.hasToken {
		creds, err := newBearerToken(c.token)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(creds))
	}
	return append(opts, c.grpc...), nil
}

func (t *TLSConfig) build() (*tls.Config, error) {
	// TLS 1.2 is the oldest the broker's rustls speaks.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if len(t.CAPEM) > 0 {
		// RootCAs stays nil without a CA, which is what makes crypto/tls use the system's roots.
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(t.CAPEM) {
			return nil, invalidOption("tls.ca", "no PEM certificate in CAPEM")
		}
	}
	if len(t.CertPEM) > 0 || len(t.KeyPEM) > 0 {
		identity, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
		if err != nil {
			return nil, invalidOption("tls.cert", "CertPEM and KeyPEM: "+err.Error())
		}
		cfg.Certificates = []tls.Certificate{identity}
	}
	return cfg, nil
}

// bearerToken is the per-call credentials of WithToken.
type bearerToken struct{ header string }

func newBearerToken(token string) (bearerToken, error) {
	if token == "" {
		return bearerToken{}, invalidOption("token", "is empty")
	}
	// gRPC metadata values are visible ASCII and spaces; anything else would fail every call with
	// an error far from its cause.
	for i := 0; i < len(token); i++ {
		if token[i] < 0x20 || token[i] > 0x7e {
			return bearerToken{}, invalidOption("token", "may hold only printable ASCII")
		}
	}
	return bearerToken{header: "Bearer " + token}, nil
}

// GetRequestMetadata returns a fresh map each call, since gRPC owns what it is given.
func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

// RequireTransportSecurity is false because the broker accepts a token over plaintext, which is
// how one on loopback is used; WithToken's documentation says what that costs elsewhere.
func (bearerToken) RequireTransportSecurity() bool { return false }

// invalidOption is the error of a Dial option that cannot be used; nothing was dialled.
func invalidOption(field, message string) error {
	return &Error{Op: "dial", Code: codes.InvalidArgument, Field: field, Message: field + ": " + message, kind: ErrInvalidArgument}
}
