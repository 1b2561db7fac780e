// The Client: one gRPC connection and the generated stubs of both services.

package switchyard

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// Client is a handle on one broker. It is safe for concurrent use; make one and share it.
type Client struct {
	broker pb.BrokerClient
	admin  pb.AdminClient
	// conn is the connection Dial opened, closed by Close; nil when New was given one, which the
	// caller owns.
	conn *grpc.ClientConn
}

// Dial makes a client of the broker at target ("127.0.0.1:50051", or any gRPC target). The
// connection is plaintext unless opts give other transport credentials: for a broker serving TLS
// (or mutual TLS), pass grpc.WithTransportCredentials(credentials.NewTLS(cfg)), which replaces the
// plaintext default. This package has no option for the broker's bearer tokens; a
// grpc.WithPerRPCCredentials whose credentials add "authorization: Bearer <token>" to every call
// gives one. Like grpc.NewClient, it does not wait for the connection: the first call makes it.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, wrap("dial", err)
	}
	c := New(conn)
	c.conn = conn
	return c, nil
}

// New makes a client over a connection the caller made and will close.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{broker: pb.NewBrokerClient(conn), admin: pb.NewAdminClient(conn)}
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
