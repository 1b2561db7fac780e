// The Client: one gRPC connection and the generated stubs of both services.

package switchyard

import (
	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Client is a handle on one broker. It is safe for concurrent use; make one and share it.
type Client struct {
	broker pb.BrokerClient
	admin  pb.AdminClient
	// settler batches the deliveries' settlements.
	settler *settler
	// conn is the connection Dial opened, closed by Close; nil when New was given one, which the
	// caller owns.
	conn *grpc.ClientConn
}

// Dial makes a client of the broker at target ("127.0.0.1:50051", or any gRPC target). The
// connection is plaintext without a token unless opts say otherwise: [WithTLS] for a broker serving
// TLS or mutual TLS, [WithToken] for one with authentication on, [WithDialOptions] for any other gRPC
// setting. An option that cannot be used (a CA that is not PEM, a certificate without its key) is an
// [ErrInvalidArgument] whose Field names it. Like grpc.NewClient, Dial does not wait for the
// connection: the first call makes it, and a failed handshake fails that call with
// [ErrUnavailable].
func Dial(target string, opts ...Option) (*Client, error) {
	var cfg dialConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	grpcOpts, err := cfg.grpcOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, grpcOpts...)
	if err != nil {
		return nil, wrap("dial", err)
	}
	c := New(conn)
	c.conn = conn
	return c, nil
}

// New makes a client over a connection the caller made and will close.
func New(conn grpc.ClientConnInterface) *Client {
	broker := pb.NewBrokerClient(conn)
	return &Client{broker: broker, admin: pb.NewAdminClient(conn), settler: &settler{broker: broker}}
}

// Close closes the connection Dial opened, which ends every stream on it. It does nothing for a
// client made by New.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Broker is the generated stub of the Broker service, for what this package does not wrap.
func (c *Client) Broker() pb.BrokerClient { return c.broker }

// Admin is the generated stub of the Admin service.
func (c *Client) Admin() pb.AdminClient { return c.admin }
