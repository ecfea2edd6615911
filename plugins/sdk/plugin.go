package sdk

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	signerpb "github.com/cordonhq/cordon/plugins/sdk/proto"
)

// PluginName is the one plugin a signer plugin binary serves.
const PluginName = "signer"

// Handshake is the go-plugin handshake between cordon's plugin host and
// a signer plugin. The magic cookie only keeps the binary from being run
// by hand by mistake; it is no security measure (the host pins the
// binary's SHA-256 and talks to it over AutoMTLS).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "CORDON_SIGNER_PLUGIN",
	MagicCookieValue: "3f1c9a7e2b5d48e6a0c4f8b1d2e7a9c5",
}

// PluginMap is the plugin set of both sides. The host's entry has a nil
// Impl: it only dials.
func PluginMap(impl Signer) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// GRPCPlugin is the go-plugin glue: the plugin side serves Impl, the
// host side gets a *Client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Signer
}

// GRPCServer registers Impl (and its Cosign, if it is a Cosigner).
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	signerpb.RegisterSignerServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns the host's *Client over c.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{rpc: signerpb.NewSignerClient(c)}, nil
}

// Logger is a plugin's logger: JSON lines on stderr, which go-plugin
// forwards to the host's log with their level and fields. A plugin never
// logs key material, PINs or signed payloads.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// Serve serves impl as a signer plugin and returns when the host is gone
// (go-plugin then exits the process). If impl is also a Cosigner, its
// Cosign is served; otherwise Cosign answers Unimplemented. Call it from
// the plugin's main once its configuration (its arguments) is loaded.
func Serve(impl Signer) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginMap(impl),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          Logger("plugin"),
	})
}
