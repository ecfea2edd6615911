package party

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// PluginName and PluginVersion are what the plugin's Describe says.
const (
	PluginName    = "threshold"
	PluginVersion = "0.1.0-experimental"
)

// Plugin serves one share as a cordon signer plugin with CapCosign:
// Sign is refused (a share signs only in a session), Cosign runs the
// share's side of a session for the networks it is allowed.
type Plugin struct {
	share    *Share
	networks []string
	timeout  time.Duration
	log      *slog.Logger
}

var (
	_ sdk.Signer   = (*Plugin)(nil)
	_ sdk.Cosigner = (*Plugin)(nil)
)

// NewPlugin serves share. networks, when not empty, are the only
// networks Cosign signs for; timeout bounds each session
// (DefaultSessionTimeout when 0); a nil log discards.
func NewPlugin(share *Share, networks []string, timeout time.Duration, log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if timeout <= 0 {
		timeout = DefaultSessionTimeout
	}
	return &Plugin{share: share, networks: slices.Clone(networks), timeout: timeout, log: log}
}

// Describe implements sdk.Signer.
func (p *Plugin) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:         PluginName,
		Version:      PluginVersion,
		Capabilities: []string{sdk.CapCosign},
		Keys: []sdk.KeyInfo{{
			ID:        p.share.KeyID,
			Curve:     sdk.CurveSecp256k1,
			PublicKey: slices.Clone(p.share.GroupKey),
			Networks:  slices.Clone(p.networks),
		}},
	}, nil
}

// PublicKey implements sdk.Signer: the group key.
func (p *Plugin) PublicKey(_ context.Context, keyID string) ([]byte, error) {
	if keyID != p.share.KeyID {
		return nil, fmt.Errorf("%w: threshold: %q", sdk.ErrUnknownKey, keyID)
	}
	return slices.Clone(p.share.GroupKey), nil
}

// Sign implements sdk.Signer: always refused.
func (p *Plugin) Sign(context.Context, sdk.SignRequest) (sdk.Signature, error) {
	return sdk.Signature{}, fmt.Errorf("%w: threshold: a share signs only in a session (Cosign)", sdk.ErrRefused)
}

// Cosign implements sdk.Cosigner.
func (p *Plugin) Cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel) (sdk.Signature, error) {
	if len(p.networks) > 0 && !slices.Contains(p.networks, req.Context.Network) {
		return sdk.Signature{}, fmt.Errorf("%w: threshold: network %q is not one this share signs for (%q)", sdk.ErrRefused, req.Context.Network, p.networks)
	}
	start := time.Now()
	sig, err := p.share.CosignTimeout(ctx, req, ch, p.timeout)
	if err != nil {
		p.log.Warn("cosign session failed", "session", req.Session, "parties", req.Parties, "err", err)
		return sdk.Signature{}, err
	}
	p.log.Info("cosign session done", "session", req.Session, "parties", req.Parties, "took", time.Since(start).String())
	return sig, nil
}
