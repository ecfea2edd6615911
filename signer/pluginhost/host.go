// Package pluginhost starts cordon's signer plugins (plugins/sdk) and
// talks to them. A plugin binary is pinned by its SHA-256: the host
// copies it into a private directory while hashing the bytes it copies,
// refuses a binary whose hash differs, and executes only that copy, so
// a file swapped after the check is never run. The plugin gets no
// environment of the host's (go-plugin's SkipHostEnv), speaks gRPC over
// AutoMTLS, dies with the host (Pdeathsig), and logs into the host's
// logger. A call to a plugin that died fails; the next call starts it
// again. Run pings the plugin on an interval, exposes the result
// (Health, Healthy) and starts a dead plugin again before a call has to.
// A failed signing is never retried by the host.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// Config names one plugin.
type Config struct {
	// Name is how cordon's config refers to the plugin.
	Name string `yaml:"name"`
	// Path of the binary and SHA256 its expected hex SHA-256 (required).
	Path   string `yaml:"path"`
	SHA256 string `yaml:"sha256"`
	// Args are the plugin's command-line arguments (its configuration;
	// secrets by file).
	Args []string `yaml:"args"`
	// Env is the plugin's whole environment ("KEY=value"): nothing of
	// the host's is passed on (a PKCS#11 library's config file, say).
	Env []string `yaml:"env"`
	// Timeout bounds each call (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// ErrPinned is returned when the binary's hash is not the configured one.
var ErrPinned = errors.New("pluginhost: plugin binary does not match its pinned sha256")

// Plugin is a started plugin. It implements sdk.Signer and sdk.Cosigner.
type Plugin struct {
	cfg  Config
	log  *slog.Logger
	dir  string
	exe  string
	mu   sync.Mutex
	cl   *plugin.Client
	rpc  *sdk.Client
	gone bool

	restarts atomic.Int64 // processes started after one exited
	hmu      sync.Mutex   // guards health
	health   Health
}

// Open verifies and copies the binary and starts the plugin.
func Open(cfg Config, log *slog.Logger) (*Plugin, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	want, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(cfg.SHA256), "sha256:"))
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("pluginhost: plugin %q: sha256 must be 64 hex digits", cfg.Name)
	}
	dir, err := os.MkdirTemp("", "cordon-plugin-")
	if err != nil {
		return nil, fmt.Errorf("pluginhost: plugin %q: %w", cfg.Name, err)
	}
	exe := filepath.Join(dir, filepath.Base(cfg.Path))
	got, err := copyHashed(cfg.Path, exe)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pluginhost: plugin %q: %w", cfg.Name, err)
	}
	if hex.EncodeToString(got) != hex.EncodeToString(want) {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: plugin %q (%s) has sha256 %x", ErrPinned, cfg.Name, cfg.Path, got)
	}
	p := &Plugin{cfg: cfg, log: log.With("plugin", cfg.Name), dir: dir, exe: exe}
	if _, err := p.client(); err != nil {
		p.Close()
		return nil, err
	}
	p.health = Health{Healthy: true, Checked: time.Now()}
	return p, nil
}

// copyHashed copies src to dst (0700) and returns the SHA-256 of the
// bytes written.
func copyHashed(src, dst string) ([]byte, error) {
	in, err := os.Open(src) //nolint:gosec // the configured plugin path
	if err != nil {
		return nil, err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700) //nolint:gosec // our private directory
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		_ = out.Close()
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// client returns the running plugin's client, starting it if needed.
func (p *Plugin) client() (*sdk.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return nil, fmt.Errorf("pluginhost: plugin %q is closed", p.cfg.Name)
	}
	if p.cl != nil && !p.cl.Exited() {
		return p.rpc, nil
	}
	if p.cl != nil {
		p.log.Warn("plugin exited; starting it again")
		p.cl.Kill()
		p.restarts.Add(1)
	}
	cmd := exec.Command(p.exe, p.cfg.Args...) //nolint:gosec,noctx // the pinned copy; its life is the plugin client's, not a call's
	cmd.Env = append([]string(nil), p.cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cl := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginMap(nil),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AutoMTLS:         true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclogTo(p.log),
		StartTimeout:     p.cfg.Timeout,
	})
	rc, err := cl.Client()
	if err != nil {
		cl.Kill()
		return nil, fmt.Errorf("pluginhost: starting plugin %q: %w", p.cfg.Name, err)
	}
	raw, err := rc.Dispense(sdk.PluginName)
	if err != nil {
		cl.Kill()
		return nil, fmt.Errorf("pluginhost: plugin %q: %w", p.cfg.Name, err)
	}
	c, ok := raw.(*sdk.Client)
	if !ok {
		cl.Kill()
		return nil, fmt.Errorf("pluginhost: plugin %q: unexpected client %T", p.cfg.Name, raw)
	}
	p.cl, p.rpc = cl, c
	return c, nil
}

// Pid is the plugin process's id (0 when none runs).
func (p *Plugin) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil || p.cl.Exited() || p.cl.ReattachConfig() == nil {
		return 0
	}
	return p.cl.ReattachConfig().Pid
}

// Ping checks that the plugin answers.
func (p *Plugin) Ping(ctx context.Context) error {
	_, err := p.Describe(ctx)
	return err
}

// exited reports whether the plugin's process has exited (and not been
// started again yet).
func (p *Plugin) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.gone && p.cl != nil && p.cl.Exited()
}

// Health is the plugin as its health pings (Run) last saw it.
type Health struct {
	Healthy bool
	// Err is why the last ping failed (nil when Healthy).
	Err error
	// Checked is when the last ping ended (Open's start at first).
	Checked time.Time
	// Restarts counts the processes started after one exited, by a
	// ping or by a call.
	Restarts int64
}

// errExited is the health error of a plugin whose process exited.
var errExited = errors.New("pluginhost: the plugin process exited")

// Health is the plugin's health as of the last ping.
func (p *Plugin) Health() Health {
	p.hmu.Lock()
	h := p.health
	p.hmu.Unlock()
	h.Restarts = p.restarts.Load()
	return h
}

// Healthy reports whether the last ping was answered.
func (p *Plugin) Healthy() bool { return p.Health().Healthy }

// Run pings the plugin every interval until ctx ends, and returns
// ctx's error. A ping that finds the process exited marks the plugin
// unhealthy and the next one starts it again (Ping starts an exited
// plugin), so the next Sign does not wait for the start; a ping not
// answered within the interval marks it unhealthy too. Each failure is
// logged, and the recovery.
func (p *Plugin) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("pluginhost: plugin %q: health interval %v", p.cfg.Name, every)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		p.check(ctx, every)
	}
}

// check is one health ping.
func (p *Plugin) check(ctx context.Context, timeout time.Duration) {
	var err error
	if p.exited() && p.Healthy() {
		// Seen dead: unhealthy until the next ping has started it again.
		err = errExited
	} else {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err = p.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return // stopping: not the plugin's failure
		}
	}
	p.hmu.Lock()
	was := p.health.Healthy
	p.health = Health{Healthy: err == nil, Err: err, Checked: time.Now()}
	p.hmu.Unlock()
	switch {
	case err != nil:
		p.log.Warn("plugin health ping failed", "err", err)
	case !was:
		p.log.Info("plugin healthy again", "pid", p.Pid())
	}
}

func (p *Plugin) call(ctx context.Context) (*sdk.Client, context.Context, context.CancelFunc, error) {
	c, err := p.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	return c, ctx, cancel, nil
}

// Describe implements sdk.Signer.
func (p *Plugin) Describe(ctx context.Context) (sdk.Description, error) {
	c, ctx, cancel, err := p.call(ctx)
	if err != nil {
		return sdk.Description{}, err
	}
	defer cancel()
	return c.Describe(ctx)
}

// PublicKey implements sdk.Signer.
func (p *Plugin) PublicKey(ctx context.Context, keyID string) ([]byte, error) {
	c, ctx, cancel, err := p.call(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return c.PublicKey(ctx, keyID)
}

// Sign implements sdk.Signer. A plugin that dies during the call fails
// it; the call is not retried.
func (p *Plugin) Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error) {
	c, ctx, cancel, err := p.call(ctx)
	if err != nil {
		return sdk.Signature{}, err
	}
	defer cancel()
	sig, err := c.Sign(ctx, req)
	if err != nil {
		return sdk.Signature{}, fmt.Errorf("pluginhost: plugin %q: sign: %w", p.cfg.Name, err)
	}
	return sig, nil
}

// Cosign implements sdk.Cosigner.
func (p *Plugin) Cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel) (sdk.Signature, error) {
	c, ctx, cancel, err := p.call(ctx)
	if err != nil {
		return sdk.Signature{}, err
	}
	defer cancel()
	return c.Cosign(ctx, req, ch)
}

// Close stops the plugin and removes its copy.
func (p *Plugin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone = true
	if p.cl != nil {
		p.cl.Kill()
	}
	_ = os.RemoveAll(p.dir)
}

// hclogTo is an hclog.Logger writing into log: go-plugin's own lines
// and the plugin's stderr (JSON lines, forwarded with their level).
func hclogTo(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      hclog.Info,
		Output:     slogWriter{log},
		JSONFormat: true,
	})
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(b)))
	return len(b), nil
}
