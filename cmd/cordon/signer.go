package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/obs"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/cosign"
	"github.com/cordonhq/cordon/signer/pluginhost"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
)

const signerUsage = `cordon signer — the second risk layer (docs/signing.md)

Usage:
  cordon signer run   --config FILE   read signing requests from Kafka, check each against
                                      the signer's own approvers, policy, wallets, limits and
                                      blocklist, and sign through its plugins
  cordon signer check --config FILE   load and validate the file, the blocklist and the plugins
                                      (each started, pinned, described), then exit
`

func signerCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, signerUsage)
		return errors.New("signer: no subcommand given")
	}
	switch args[0] {
	case "run", "check":
	case "-h", "--help", "help":
		fmt.Print(signerUsage)
		return nil
	default:
		fmt.Fprint(os.Stderr, signerUsage)
		return fmt.Errorf("signer: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("signer "+args[0], flag.ContinueOnError)
	path := fs.String("config", "", "the signer's configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("signer: --config FILE is required")
	}
	cfg, err := config.LoadSigner(*path, os.Environ())
	if err != nil {
		return err
	}
	log, err := obs.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	s, err := openSigner(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.close()
	if args[0] == "check" {
		fmt.Printf("signer config %s: ok (%d plugins, %d blocklisted addresses, %d approvers)\n",
			*path, len(s.plugins), s.blocked, len(cfg.Signer.Approvers))
		return nil
	}
	return s.run(ctx)
}

// signing is a started signer: its plugins, blocklist and service.
type signing struct {
	cfg     config.SignerFile
	plugins []*pluginhost.Plugin
	blocked int
	svc     *vault.Service
	reg     *prometheus.Registry
	log     *slog.Logger
}

// openSigner loads the blocklist, starts and checks every plugin, and
// makes the service; an error stops every plugin already started.
func openSigner(ctx context.Context, cfg config.SignerFile, log *slog.Logger) (_ *signing, err error) {
	s := &signing{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	index := intel.NewIndex()
	if s.blocked, err = loadBlocklist(index, cfg.Blocklist, time.Now()); err != nil {
		return nil, err
	}
	signers := map[string]vault.Signer{}
	byName := map[string]*pluginhost.Plugin{}
	for _, pc := range cfg.Plugins {
		p, err := pluginhost.Open(pc, log.With("plugin", pc.Name))
		if err != nil {
			return nil, fmt.Errorf("signer: plugin %q: %w", pc.Name, err)
		}
		s.plugins = append(s.plugins, p)
		d, err := p.Describe(ctx)
		if err != nil {
			return nil, fmt.Errorf("signer: plugin %q: describe: %w", pc.Name, err)
		}
		log.Info("signer: plugin started", "plugin", pc.Name, "name", d.Name, "version", d.Version, "keys", len(d.Keys), "pid", p.Pid())
		signers[pc.Name], byName[pc.Name] = p, p
	}
	keyed := map[string]publicKeyer{}
	for n, p := range byName {
		keyed[n] = p
	}
	for _, g := range cfg.Threshold {
		group, err := openGroup(ctx, g, byName, log)
		if err != nil {
			return nil, err
		}
		signers[g.Name], keyed[g.Name] = group, group
		log.Info("signer: threshold key ready", "group", g.Name, "key", g.KeyID, "parties", len(g.Parties))
	}
	s.reg = obs.NewRegistry()
	metrics := vault.NewMetrics(s.reg)
	newVault := func() (*vault.Vault, error) { return vault.New(cfg.Signer, signers, index, log) }
	// The wallets' keys must be the plugins' own: a key the plugin does
	// not hold, or answers with another public key for, stops the signer
	// now rather than at its first withdrawal.
	if _, err := newVault(); err != nil {
		return nil, err
	}
	if err := checkWalletKeys(ctx, cfg, keyed); err != nil {
		return nil, err
	}
	s.svc, err = vault.NewService(vault.ServiceConfig{Kafka: cfg.Kafka, NewVault: newVault, Log: log, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// publicKeyer is what holds a wallet's key: a plugin or a threshold
// group.
type publicKeyer interface {
	PublicKey(ctx context.Context, keyID string) ([]byte, error)
}

// openGroup makes a threshold group over its parties' plugins and checks
// that each holds a share of its key.
func openGroup(ctx context.Context, g config.ThresholdGroup, byName map[string]*pluginhost.Plugin, log *slog.Logger) (*cosign.Group, error) {
	pk, err := hex.DecodeString(g.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signer: threshold %q: public key: %w", g.Name, err)
	}
	parties := map[string]sdk.Cosigner{}
	for id, pl := range g.Parties {
		parties[id] = byName[pl]
	}
	var opts []cosign.Option
	if g.SessionTimeout > 0 {
		opts = append(opts, cosign.WithSessionTimeout(g.SessionTimeout))
	}
	if g.Retry {
		opts = append(opts, cosign.WithRetry())
	}
	group, err := cosign.New(g.KeyID, pk, parties, log.With("group", g.Name), opts...)
	if err != nil {
		return nil, fmt.Errorf("signer: threshold %q: %w", g.Name, err)
	}
	if err := group.Check(ctx); err != nil {
		return nil, fmt.Errorf("signer: threshold %q: %w", g.Name, err)
	}
	return group, nil
}

// loadBlocklist reads the signer's blocklist files into index and says
// how many addresses it holds.
func loadBlocklist(index *intel.Index, files []config.BlocklistFile, now time.Time) (int, error) {
	n := 0
	for i, b := range files {
		content, err := os.ReadFile(b.Path)
		if err != nil {
			return 0, fmt.Errorf("signer: blocklist[%d]: %w", i, err)
		}
		var feed *intel.Feed
		switch b.Format {
		case "ofac":
			feed, err = intel.ParseOFACList(content, fmt.Sprintf("signer-blocklist-%d", i), b.Currency, now)
		case "csv":
			feed, err = intel.ParseCSV(content, fmt.Sprintf("signer-blocklist-%d", i), "signer-blocklist", chain.Chain(b.Chain), now)
		default:
			err = fmt.Errorf("format %q", b.Format)
		}
		if err != nil {
			return 0, fmt.Errorf("signer: blocklist[%d] %s: %w", i, b.Path, err)
		}
		for j := range feed.Indicators {
			index.Put(&feed.Indicators[j])
		}
		n += len(feed.Indicators)
	}
	return n, nil
}

// checkWalletKeys asks each wallet key's plugin for the key's public key
// and compares it with the configured one: a plugin that does not hold
// the key, or holds another, stops the signer at its start rather than
// at its first withdrawal.
func checkWalletKeys(ctx context.Context, cfg config.SignerFile, byName map[string]publicKeyer) error {
	var errs []error
	check := func(name string, ref wallet.KeyRef) {
		p := byName[ref.Plugin]
		if p == nil {
			errs = append(errs, fmt.Errorf("signer: wallet %q: plugin %q is not configured", name, ref.Plugin))
			return
		}
		pub, err := p.PublicKey(ctx, ref.KeyID)
		if err != nil {
			errs = append(errs, fmt.Errorf("signer: wallet %q: plugin %q key %q: %w", name, ref.Plugin, ref.KeyID, err))
			return
		}
		if !strings.EqualFold(hex.EncodeToString(pub), ref.PublicKey) {
			errs = append(errs, fmt.Errorf("signer: wallet %q: plugin %q key %q is %x; the config says %s", name, ref.Plugin, ref.KeyID, pub, ref.PublicKey))
		}
	}
	for _, w := range cfg.Signer.Wallets.BTC {
		for _, k := range w.Keys {
			check(w.Name, k)
		}
	}
	for _, w := range cfg.Signer.Wallets.ETH {
		check(w.Name, w.Key)
	}
	return errors.Join(errs...)
}

// run serves until ctx ends: the service, each plugin's health loop, and
// health and metrics on http.listen when it is set.
func (s *signing) run(ctx context.Context) error {
	eg, ectx := errgroup.WithContext(ctx)
	for _, p := range s.plugins {
		eg.Go(func() error { return p.Run(ectx, s.cfg.HealthInterval) })
	}
	if s.cfg.HTTP.Listen != "" {
		checks := &obs.Checks{}
		for i, p := range s.plugins {
			name := s.cfg.Plugins[i].Name
			checks.Add("plugin-"+name, func() error {
				if h := p.Health(); !h.Healthy {
					return fmt.Errorf("plugin %s unhealthy: %w", name, h.Err)
				}
				return nil
			})
		}
		srv, err := obs.Listen(s.cfg.HTTP.Listen, s.reg, checks, s.log)
		if err != nil {
			return err
		}
		s.log.Info("signer: health and metrics", "http", srv.Addr())
		eg.Go(func() error { return srv.Run(ectx) })
	}
	eg.Go(func() error { return s.svc.Run(ectx) })
	s.log.Info("cordon signer running", "version", version, "brokers", s.cfg.Kafka.Brokers, "plugins", len(s.plugins),
		"blocklisted", s.blocked, "btc_wallets", len(s.cfg.Signer.Wallets.BTC), "eth_wallets", len(s.cfg.Signer.Wallets.ETH))
	return eg.Wait()
}

// close stops every plugin process.
func (s *signing) close() {
	for _, p := range s.plugins {
		p.Close()
	}
}
