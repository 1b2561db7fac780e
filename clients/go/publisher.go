// The batching publisher: messages queued from any goroutine go out on one PublishStream, several
// frames in flight at once, each message with an outcome of its own.

package switchyard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/clients/go/gen/switchyard/v1"
)

// PublisherOptions tune a Publisher; the zero value (or nil) is fine.
type PublisherOptions struct {
	// MaxBatch is the most messages one frame carries (a frame is what queued up while the last
	// ones were on their way); 0 means 500. A frame is all or nothing, as PublishBatch is.
	MaxBatch int
	// MaxInFlight is how many frames may wait for their answer at once; 0 means 16.
	MaxInFlight int
	// QueueSize is how many messages may wait to be sent; Publish blocks while it is full, which
	// is the backpressure of a broker slower than its publishers. 0 means 4096.
	QueueSize int
	// WaitForRoom asks the broker to wait for room in a full group (up to its --max-publish-wait)
	// instead of refusing the frame at once with ErrGroupFull.
	WaitForRoom bool
}

func (o *PublisherOptions) orDefaults() PublisherOptions {
	var out PublisherOptions
	if o != nil {
		out = *o
	}
	if out.MaxBatch <= 0 {
		out.MaxBatch = 500
	}
	if out.MaxInFlight <= 0 {
		out.MaxInFlight = 16
	}
	if out.QueueSize <= 0 {
		out.QueueSize = 4096
	}
	return out
}

// ErrClosed is what Publish returns once the Publisher is closed.
var ErrClosed = errors.New("switchyard: the publisher is closed")

// Publisher publishes through one PublishStream, in order: messages are routed in the order
// Publish was called (from one goroutine; calls from several are ordered as they queue). It is
// safe for concurrent use. A stream that breaks fails the frames it carried (they may or may not
// have been routed) and the next frame opens a new one. Close it when done.
type Publisher struct {
	client *Client
	opts   PublisherOptions
	queue  chan queued
	slots  chan struct{} // a token per frame in flight

	mu          sync.Mutex
	closed      bool
	abandoned   bool          // Close's context ended: what is left fails with ErrClosed, unsent
	outstanding int           // messages queued whose outcome is not known yet
	idle        chan struct{} // closed when outstanding reaches 0; replaced when it leaves 0
	stream      *frames       // the open stream, or nil

	publishing sync.WaitGroup // Publish calls under way
	sending    sync.WaitGroup // the sending goroutine
	stop       chan struct{}  // closed by Close: a Publish waiting for room gives up
	drain      chan struct{}  // closed by Close once no Publish is under way: the sender empties the queue and ends
}

// queued is one message waiting to be sent, and where its outcome goes.
type queued struct {
	msg     *pb.Message
	pending *PendingPublish
}

// PendingPublish is the outcome of one message given to Publisher.Publish.
type PendingPublish struct {
	done      chan struct{}
	published Published
	err       error
}

// Wait blocks until the message is routed (its Published) or refused (the *Error of its frame:
// ErrInvalidArgument naming the field, ErrGroupFull, ...; or ErrUnavailable when the stream broke
// before its answer, when it may or may not have been routed), or until ctx is done.
func (p *PendingPublish) Wait(ctx context.Context) (Published, error) {
	select {
	case <-p.done:
		return p.published, p.err
	case <-ctx.Done():
		return Published{}, ctx.Err()
	}
}

// Done is closed once the outcome is known.
func (p *PendingPublish) Done() <-chan struct{} { return p.done }

// Publisher makes a batching publisher. Its stream opens with the first frame.
func (c *Client) Publisher(opts *PublisherOptions) *Publisher {
	o := opts.orDefaults()
	idle := make(chan struct{})
	close(idle)
	p := &Publisher{
		client: c,
		opts:   o,
		queue:  make(chan queued, o.QueueSize),
		slots:  make(chan struct{}, o.MaxInFlight),
		idle:   idle,
		stop:   make(chan struct{}),
		drain:  make(chan struct{}),
	}
	p.sending.Go(p.send)
	return p
}

// Publish queues msg and returns its PendingPublish at once, or waits while the queue is full
// (until ctx is done: then ctx's error, and msg is not queued). After Close it is ErrClosed.
func (p *Publisher) Publish(ctx context.Context, msg Message) (*PendingPublish, error) {
	pending := &PendingPublish{done: make(chan struct{})}
	item := queued{msg: msg.toPB(), pending: pending}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if p.outstanding == 0 {
		p.idle = make(chan struct{})
	}
	p.outstanding++
	p.publishing.Add(1)
	p.mu.Unlock()
	defer p.publishing.Done()
	select {
	case p.queue <- item:
		return pending, nil
	case <-ctx.Done():
		p.settled(1)
		return nil, ctx.Err()
	case <-p.stop:
		p.settled(1)
		return nil, ErrClosed
	}
}

// Flush waits until every message queued before it has its outcome, or until ctx is done.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking messages, sends those queued, waits (until ctx is done) for their outcomes,
// and closes the stream. Messages still unanswered when ctx ends fail with ErrClosed. A second
// Close only waits as the first does.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		close(p.stop)
		// No Publish queues anything after this: the sender can drain the queue for good.
		p.publishing.Wait()
		close(p.drain)
	}
	// The sender may be held by frames a stalled broker does not answer: past ctx, what is left is
	// abandoned, so that Close returns when its context says.
	sent := make(chan struct{})
	go func() {
		p.sending.Wait()
		close(sent)
	}()
	select {
	case <-sent:
	case <-ctx.Done():
		p.abandon()
		<-sent
	}
	flushed := p.Flush(ctx)
	p.mu.Lock()
	if p.abandoned {
		flushed = ctx.Err()
	}
	p.mu.Unlock()
	p.mu.Lock()
	stream := p.stream
	p.mu.Unlock()
	if stream != nil {
		stream.end(nil)
	}
	return flushed
}

// abandon fails what waits for an answer and what is still to send with ErrClosed.
func (p *Publisher) abandon() {
	p.mu.Lock()
	p.abandoned = true
	stream := p.stream
	p.mu.Unlock()
	if stream != nil {
		stream.end(ErrClosed)
	}
}

// settled counts n outcomes as known.
func (p *Publisher) settled(n int) {
	p.mu.Lock()
	p.outstanding -= n
	if p.outstanding == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// resolve gives each message of a frame its outcome.
func (p *Publisher) resolve(batch []queued, published []*pb.Published, err error) {
	if err == nil && len(published) != len(batch) {
		err = protocolError("publish", fmt.Sprintf("the broker answered for %d of %d messages",
			len(published), len(batch)))
	}
	for i, item := range batch {
		if err != nil {
			item.pending.err = err
		} else {
			got := published[i]
			item.pending.published = Published{ID: got.GetId(), Subscribers: got.GetSubscribers(), Groups: got.GetGroups()}
		}
		close(item.pending.done)
	}
	p.settled(len(batch))
}

// send takes what queued up, up to MaxBatch, as one frame, until Close and the queue is empty.
func (p *Publisher) send() {
	for {
		var first queued
		select {
		case first = <-p.queue:
		case <-p.drain:
			// Close: what is still queued goes out before the sender ends.
			select {
			case first = <-p.queue:
			default:
				return
			}
		}
		batch := []queued{first}
	more:
		for len(batch) < p.opts.MaxBatch {
			select {
			case item := <-p.queue:
				batch = append(batch, item)
			default:
				break more
			}
		}
		p.slots <- struct{}{}
		if err := p.sendFrame(batch); err != nil {
			<-p.slots
			p.resolve(batch, nil, err)
		}
	}
}

// sendFrame sends batch on the open stream, opening one if there is none.
func (p *Publisher) sendFrame(batch []queued) error {
	p.mu.Lock()
	stream, abandoned := p.stream, p.abandoned
	p.mu.Unlock()
	if abandoned {
		return ErrClosed
	}
	if stream == nil || stream.broken() {
		opened, err := p.open()
		if err != nil {
			return err
		}
		stream = opened
	}
	return stream.send(batch)
}

// open starts a PublishStream, read by a goroutine of its own until it ends.
func (p *Publisher) open() (*frames, error) {
	ctx, cancel := context.WithCancel(context.Background())
	call, err := p.client.broker.PublishStream(ctx)
	if err != nil {
		cancel()
		return nil, wrap("publish", err)
	}
	f := &frames{publisher: p, call: call, cancel: cancel, waiting: newWaitlist[[]queued]()}
	p.mu.Lock()
	p.stream = f
	p.mu.Unlock()
	go f.read()
	return f, nil
}

// frames is one PublishStream: the frames sent on it that wait for their answer.
type frames struct {
	publisher *Publisher
	call      grpc.BidiStreamingClient[pb.PublishStreamRequest, pb.PublishStreamResponse]
	cancel    context.CancelFunc
	waiting   *waitlist[[]queued]
}

func (f *frames) broken() bool { return f.waiting.broken() }

// send sends one frame; its answer comes to read.
func (f *frames) send(batch []queued) error {
	sequence, err := f.waiting.add(batch)
	if err != nil {
		return err
	}
	req := &pb.PublishStreamRequest{Sequence: sequence, WaitForRoom: f.publisher.opts.WaitForRoom,
		Messages: make([]*pb.Message, len(batch))}
	for i, item := range batch {
		req.Messages[i] = item.msg
	}
	if err := f.call.Send(req); err != nil {
		// The stream broke: Recv has the status, and read fails what waits, this frame included.
		f.call.CloseSend()
		return nil
	}
	return nil
}

// read hands each answer to its frame, and fails what still waits when the stream ends.
func (f *frames) read() {
	readAnswers("publish", f.call.Recv, f.waiting, func(batch []queued, resp *pb.PublishStreamResponse) {
		<-f.publisher.slots
		if se := resp.GetError(); se != nil {
			f.publisher.resolve(batch, nil, streamError("publish", se))
			return
		}
		f.publisher.resolve(batch, resp.GetPublished().GetPublished(), nil)
	}, f.end)
}

// end marks the stream broken with err (nil: closed by the publisher) and fails what still waits.
func (f *frames) end(err error) {
	if err == nil {
		err = ErrClosed
	}
	waiting, first := f.waiting.fail(err)
	if !first {
		return
	}
	f.cancel()
	for _, batch := range waiting {
		<-f.publisher.slots
		f.publisher.resolve(batch, nil, err)
	}
}

// streamError is the *Error of a refused frame of op: its code, reason and the reason's metadata,
// as a unary call's would be (a frame has no BadRequest or RetryInfo, so no Field or RetryAfter).
// Its status carries the reason and metadata as the broker's ErrorInfo, as a unary call's does.
func streamError(op string, se *pb.StreamError) error {
	code := codes.Code(se.GetCode())
	reason, metadata := se.GetReason(), maps.Clone(se.GetMetadata())
	st := status.New(code, se.GetMessage())
	if reason != "" {
		info := &errdetails.ErrorInfo{Reason: reason, Domain: reasonDomain, Metadata: metadata}
		if withInfo, err := st.WithDetails(info); err == nil {
			st = withInfo
		}
	}
	return &Error{Op: op, Code: code, Reason: reason, Metadata: metadata, Message: se.GetMessage(),
		kind: kindOf(code, reason), family: codeKind(code), status: st}
}
