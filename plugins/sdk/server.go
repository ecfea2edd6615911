package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signerpb "github.com/cordonhq/cordon/plugins/sdk/proto"
)

// server is the plugin side: the gRPC service over a Signer.
type server struct {
	signerpb.UnimplementedSignerServer
	impl Signer
}

func (s *server) Describe(ctx context.Context, _ *signerpb.DescribeRequest) (*signerpb.Description, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return descriptionToPB(d), nil
}

func (s *server) PublicKey(ctx context.Context, r *signerpb.PublicKeyRequest) (*signerpb.PublicKeyResponse, error) {
	k, err := s.impl.PublicKey(ctx, r.GetKeyId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &signerpb.PublicKeyResponse{PublicKey: k}, nil
}

func (s *server) Sign(ctx context.Context, r *signerpb.SignRequest) (*signerpb.Signature, error) {
	req, err := signRequestFromPB(r)
	if err != nil {
		return nil, toStatus(err)
	}
	sig, err := s.impl.Sign(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return signatureToPB(sig), nil
}

func (s *server) Cosign(stream signerpb.Signer_CosignServer) error {
	cs, ok := s.impl.(Cosigner)
	if !ok {
		return status.Error(codes.Unimplemented, "plugin: not a cosigner")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	r := first.GetRequest()
	if r == nil {
		return toStatus(fmt.Errorf("%w: the first message of a cosign stream is its request", ErrBadRequest))
	}
	req, err := cosignRequestFromPB(r)
	if err != nil {
		return toStatus(err)
	}
	ch := &serverChannel{stream: stream, in: make(chan PartyMessage, 16), done: make(chan struct{})}
	go ch.pump(ctx)
	sig, err := cs.Cosign(ctx, req, ch)
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&signerpb.CosignServerMessage{Msg: &signerpb.CosignServerMessage_Signature{Signature: signatureToPB(sig)}})
}

// serverChannel is the plugin's Channel over its side of the stream: one
// goroutine reads the stream, so Recv can honor its context.
type serverChannel struct {
	stream signerpb.Signer_CosignServer
	in     chan PartyMessage
	done   chan struct{} // closed when the stream's reading ends
	err    error         // why; read after done
}

func (c *serverChannel) pump(ctx context.Context) {
	defer close(c.done)
	for {
		m, err := c.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("plugin: host closed the cosign stream")
			}
			c.err = err
			return
		}
		p := m.GetParty()
		if p == nil {
			c.err = fmt.Errorf("%w: a cosign stream's later messages are party messages", ErrBadRequest)
			return
		}
		select {
		case c.in <- partyFromPB(p):
		case <-ctx.Done():
			c.err = ctx.Err()
			return
		}
	}
}

func (c *serverChannel) Send(ctx context.Context, m PartyMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.stream.Send(&signerpb.CosignServerMessage{Msg: &signerpb.CosignServerMessage_Party{Party: partyToPB(m)}})
}

func (c *serverChannel) Recv(ctx context.Context) (PartyMessage, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		select {
		case m := <-c.in:
			return m, nil
		default:
		}
		return PartyMessage{}, c.err
	case <-ctx.Done():
		return PartyMessage{}, ctx.Err()
	}
}
