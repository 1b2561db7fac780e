// Package switchyard is the Go client of Switchyard, a message broker that speaks gRPC.
//
// One Client (safe for concurrent use, over one gRPC connection) serves the four patterns:
//
//   - publish/subscribe: [Client.Publish], [Client.PublishBatch] and [Client.Subscribe], whose
//     [Subscription] yields messages and gaps;
//   - work queues and exclusive consumers: [Client.Consume], whose [Delivery] values are settled
//     with Ack, Nack, Reject or Extend (each one Ack call);
//   - request/reply: [Client.Request], and [Client.Serve] to answer requests;
//   - group administration: [Client.DeclareGroup], [Client.ListGroups], [Client.DeleteGroup].
//
// [Dial] connects over plaintext without a token unless told otherwise: [WithTLS] for TLS and
// mutual TLS, [WithToken] for a broker with authentication on.
//
// Every call takes a context: its deadline bounds the call, and cancelling it ends a stream.
// Failures are *[Error] values, to be tested with errors.Is against [ErrNoResponders],
// [ErrTimedOut], [ErrInvalidArgument], [ErrUnauthenticated] and the other sentinels.
//
// Streams reconnect by themselves: when the connection drops, a Subscription yields a gap with
// Disconnected set and a Consumer tells its OnDisconnect, and both go on. The generated gRPC code is
// in the package gen/switchyard/v1, for anything this package does not wrap.
package switchyard
