package party

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// outBuffer holds the messages a party emits before they are sent: a
// round's messages are written by tss-lib while it holds its lock.
const outBuffer = 64

// wireHook sees (and may change) every tss wire message a party sends,
// before it is sealed: tests use it to record honest messages and to
// play a malicious party.
type wireHook func(from string, to []string, broadcast bool, wire []byte) []byte

// transport carries one party's tss messages of one session over a
// sdk.Channel: it seals what the party sends, and opens, checks and
// hands to the party what it receives.
type transport struct {
	ch       sdk.Channel
	sess     *session
	boundary *boundary
	ids      map[string]*tss.PartyID // the session's parties by id
	hook     wireHook
}

// send seals one outgoing tss message and sends it.
func (t *transport) send(ctx context.Context, m tss.Message) error {
	wire, routing, err := m.WireBytes()
	if err != nil {
		return fmt.Errorf("threshold: encoding a tss message: %w", err)
	}
	var to []string
	if !routing.IsBroadcast {
		to = make([]string, 0, len(routing.To))
		for _, p := range routing.To {
			to = append(to, p.Id)
		}
	}
	if t.hook != nil {
		wire = t.hook(t.sess.self, to, routing.IsBroadcast, wire)
	}
	b, err := t.sess.seal(to, routing.IsBroadcast, wire)
	if err != nil {
		return err
	}
	if err := t.ch.Send(ctx, sdk.PartyMessage{Session: t.sess.id, From: t.sess.self, To: to, Payload: b}); err != nil {
		return fmt.Errorf("threshold: sending: %w", err)
	}
	return nil
}

// receive opens one incoming message: the envelope, then the boundary
// checks on the tss message it carries.
func (t *transport) receive(m sdk.PartyMessage) (tss.ParsedMessage, error) {
	e, err := t.sess.open(m.Payload)
	if err != nil {
		return nil, err
	}
	if m.Session != e.Session || m.From != e.From {
		return nil, fmt.Errorf("%w: the router's session/sender (%q, %q) are not the envelope's", ErrMalformed, m.Session, m.From)
	}
	from := t.ids[e.From]
	msg, err := tss.ParseWireMessage(e.Wire, from, e.Broadcast)
	if err != nil {
		return nil, &BoundaryError{Check: CheckMessage, From: e.From, Type: "?", Reason: "not a tss message: " + err.Error()}
	}
	if err := t.boundary.check(e.From, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// runParty runs p until it ends (its result on end), ctx ends, or a
// message is refused. Every message the party emitted before it ended
// is sent before runParty returns.
func runParty[T any](ctx context.Context, p tss.Party, out <-chan tss.Message, end <-chan T, t *transport) (T, error) {
	var zero T
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	finish := make(chan struct{})
	flushed := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	if err := p.Start(); err != nil {
		return zero, fmt.Errorf("threshold: starting the party: %w", err)
	}
	wg.Add(2)
	go func() { // sender
		defer wg.Done()
		for {
			select {
			case m := <-out:
				if err := t.send(ctx, m); err != nil {
					errc <- err
					return
				}
			case <-finish:
				for {
					select {
					case m := <-out:
						if err := t.send(ctx, m); err != nil {
							errc <- err
							return
						}
					default:
						close(flushed)
						return
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { // receiver
		defer wg.Done()
		for {
			m, err := t.ch.Recv(ctx)
			if err != nil {
				if ctx.Err() == nil {
					errc <- fmt.Errorf("threshold: receiving: %w", err)
				}
				return
			}
			msg, err := t.receive(m)
			if err != nil {
				errc <- err
				return
			}
			if _, terr := p.Update(msg); terr != nil {
				errc <- tssError(terr)
				return
			}
		}
	}()
	select {
	case r := <-end:
		close(finish)
		select {
		case <-flushed:
			return r, nil
		case err := <-errc:
			return zero, err
		case <-ctx.Done():
			return zero, sessionEnded(ctx)
		}
	case err := <-errc:
		return zero, err
	case <-ctx.Done():
		return zero, sessionEnded(ctx)
	}
}

// ErrTimeout is the session's own deadline passing.
var ErrTimeout = errors.New("threshold: the session timed out")

func sessionEnded(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), ErrTimeout) {
		return fmt.Errorf("%w (waiting for the other parties)", ErrTimeout)
	}
	return fmt.Errorf("threshold: session ended: %w", ctx.Err())
}

// tssError is tss-lib's error with its culprits named.
func tssError(e *tss.Error) error {
	culprits := make([]string, 0, len(e.Culprits()))
	for _, c := range e.Culprits() {
		if c != nil {
			culprits = append(culprits, c.Id)
		}
	}
	if len(culprits) > 0 {
		return fmt.Errorf("threshold: tss round %d: %w (culprits %q)", e.Round(), e.Cause(), culprits)
	}
	return fmt.Errorf("threshold: tss round %d: %w", e.Round(), e.Cause())
}

// memRouter routes the messages of an in-process session (Keygen's):
// each party's inbox is a queue the router never blocks on.
type memRouter struct {
	inboxes map[string]*inbox
}

type inbox struct {
	mu    sync.Mutex
	queue []sdk.PartyMessage
	ready chan struct{} // signalled when queue grows
}

func newMemRouter(ids []string) *memRouter {
	r := &memRouter{inboxes: map[string]*inbox{}}
	for _, id := range ids {
		r.inboxes[id] = &inbox{ready: make(chan struct{}, 1)}
	}
	return r
}

func (r *memRouter) deliver(to string, m sdk.PartyMessage) {
	in := r.inboxes[to]
	if in == nil {
		return
	}
	in.mu.Lock()
	in.queue = append(in.queue, m)
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// channel is party id's Channel.
func (r *memRouter) channel(id string) sdk.Channel { return &memChannel{r: r, id: id} }

type memChannel struct {
	r  *memRouter
	id string
}

func (c *memChannel) Send(ctx context.Context, m sdk.PartyMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(m.To) == 0 {
		for id := range c.r.inboxes {
			if id != c.id {
				c.r.deliver(id, m)
			}
		}
		return nil
	}
	for _, id := range m.To {
		c.r.deliver(id, m)
	}
	return nil
}

func (c *memChannel) Recv(ctx context.Context) (sdk.PartyMessage, error) {
	in := c.r.inboxes[c.id]
	for {
		in.mu.Lock()
		if len(in.queue) > 0 {
			m := in.queue[0]
			in.queue = in.queue[1:]
			in.mu.Unlock()
			return m, nil
		}
		in.mu.Unlock()
		select {
		case <-in.ready:
		case <-ctx.Done():
			return sdk.PartyMessage{}, ctx.Err()
		}
	}
}
