package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/internal/obs"
)

func cmdRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", os.Getenv("CORDON_CONFIG"), "configuration file (see cordon.example.yaml); env CORDON_CONFIG")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("run: --config FILE is required (cordon.example.yaml documents every key; `make run` starts the dev system instead)")
	}
	cfg, err := config.Load(*path, os.Environ())
	if err != nil {
		return err
	}
	log, err := obs.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	logWarnings(log, &cfg)
	sys, err := newSystem(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sys.close()
	log.Info("cordon running", "version", version, "http", sys.srv.Addr(), "brokers", cfg.Kafka.Brokers, "eth_networks", len(cfg.Chains.ETH))
	g, gctx := errgroup.WithContext(ctx)
	sys.start(gctx, g)
	return g.Wait()
}

// logWarnings logs the settings that weaken security (config.Warnings).
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("insecure setting", "key", w.Key, "problem", w.Message)
	}
}
