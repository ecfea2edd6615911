package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	signerpb "github.com/cordonhq/cordon/plugins/sdk/proto"
)

// Client is the host's side of one plugin connection: a Signer and a
// Cosigner over gRPC, its errors mapped back to the sdk's. The host's
// plugin manager (signer/pluginhost) wraps it with process management.
type Client struct {
	rpc signerpb.SignerClient
}

var (
	_ Signer   = (*Client)(nil)
	_ Cosigner = (*Client)(nil)
)

// Describe asks the plugin for its Description.
func (c *Client) Describe(ctx context.Context) (Description, error) {
	d, err := c.rpc.Describe(ctx, &signerpb.DescribeRequest{})
	if err != nil {
		return Description{}, fromStatus(err)
	}
	return descriptionFromPB(d), nil
}

// PublicKey asks the plugin for keyID's compressed public key.
func (c *Client) PublicKey(ctx context.Context, keyID string) ([]byte, error) {
	r, err := c.rpc.PublicKey(ctx, &signerpb.PublicKeyRequest{KeyId: keyID})
	if err != nil {
		return nil, fromStatus(err)
	}
	return r.GetPublicKey(), nil
}

// Sign asks the plugin for one signature.
func (c *Client) Sign(ctx context.Context, req SignRequest) (Signature, error) {
	s, err := c.rpc.Sign(ctx, &signerpb.SignRequest{KeyId: req.KeyID, Digest: req.Digest[:], Context: contextToPB(req.Context)})
	if err != nil {
		return Signature{}, fromStatus(err)
	}
	return signatureFromPB(s)
}

// Cosign drives the plugin's side of a session: messages the plugin
// sends go to ch.Send (the router), messages ch.Recv yields go to the
// plugin. A message of the plugin's for another session ends the session
// with an error.
func (c *Client) Cosign(ctx context.Context, req CosignRequest, ch Channel) (Signature, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Cosign(ctx)
	if err != nil {
		return Signature{}, fromStatus(err)
	}
	err = stream.Send(&signerpb.CosignClientMessage{Msg: &signerpb.CosignClientMessage_Request{Request: &signerpb.CosignRequest{
		Session: req.Session, KeyId: req.KeyID, Digest: req.Digest[:], Context: contextToPB(req.Context), Parties: req.Parties,
	}}})
	if err != nil {
		return Signature{}, c.streamErr(stream, err)
	}
	// Router -> plugin. gRPC allows one sender per stream side, and this
	// goroutine is the only one sending after the request.
	fwdErr := make(chan error, 1)
	go func() {
		for {
			m, err := ch.Recv(ctx)
			if err != nil {
				fwdErr <- err
				return
			}
			if err := stream.Send(&signerpb.CosignClientMessage{Msg: &signerpb.CosignClientMessage_Party{Party: partyToPB(m)}}); err != nil {
				fwdErr <- err
				return
			}
		}
	}()
	// Plugin -> router, until the signature.
	for {
		m, err := stream.Recv()
		if err != nil {
			select {
			case ferr := <-fwdErr:
				if ctx.Err() == nil && !errors.Is(ferr, io.EOF) {
					return Signature{}, fmt.Errorf("cosign: routing to the plugin: %w", ferr)
				}
			default:
			}
			return Signature{}, fromStatus(err)
		}
		switch msg := m.GetMsg().(type) {
		case *signerpb.CosignServerMessage_Party:
			p := partyFromPB(msg.Party)
			if p.Session != req.Session {
				return Signature{}, fmt.Errorf("cosign: the plugin sent a message of session %q in session %q", p.Session, req.Session)
			}
			if err := ch.Send(ctx, p); err != nil {
				return Signature{}, fmt.Errorf("cosign: routing from the plugin: %w", err)
			}
		case *signerpb.CosignServerMessage_Signature:
			return signatureFromPB(msg.Signature)
		default:
			return Signature{}, errors.New("cosign: the plugin sent an empty message")
		}
	}
}

// streamErr returns the status the server ended the stream with, when a
// Send fails because of it.
func (c *Client) streamErr(stream signerpb.Signer_CosignClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.Recv(); rerr != nil {
			return fromStatus(rerr)
		}
	}
	return fromStatus(err)
}
