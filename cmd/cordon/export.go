package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cordonhq/cordon/ingest/export"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/follow"
)

func cmdExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	chainName := fs.String("chain", "", "chain to export: eth")
	rpcURL := fs.String("rpc", "", "node JSON-RPC URL (default: --config's endpoints, else the dev system's endpoints.json)")
	network := fs.String("network", "", "network label written into records (default: from the config, or derived from the node's chain id)")
	cfgPath := fs.String("config", "", "take endpoints from this configuration file")
	dataDir := fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "dev data directory whose endpoints.json is used when neither --rpc nor --config is given")
	from := fs.Uint64("from", 0, "first block height")
	to := fs.String("to", "", "last block height (inclusive)")
	format := fs.String("format", "jsonl", "jsonl or csv")
	records := fs.String("records", "", "record types, comma separated: block,transaction,transfer (jsonl default: all; csv: exactly one, default transfer)")
	out := fs.String("out", "", "output file (default: standard output); written atomically")
	parallel := fs.Int("parallel", 8, "concurrent block fetches")
	noVerify := fs.Bool("no-verify", false, "skip recomputing block hashes and transactions roots (for chains go-ethereum cannot hash)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *chainName != "eth" {
		return fmt.Errorf("export: --chain %q: supported chains: eth", *chainName)
	}
	if *to == "" {
		return errors.New("export: --to is required (the last block height, inclusive)")
	}
	toH, err := strconv.ParseUint(*to, 10, 64)
	if err != nil {
		return fmt.Errorf("export: --to %q: not a block height", *to)
	}
	if toH < *from {
		return fmt.Errorf("export: --to %d is below --from %d", toH, *from)
	}
	types, err := export.ParseRecords(*format, *records)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}

	scfg := eth.Config{VerifyHeaderHash: !*noVerify, VerifyTxRoot: !*noVerify}
	switch {
	case *rpcURL != "":
		scfg.Endpoints = []eth.EndpointConfig{{Name: "rpc", URL: *rpcURL}}
	case *cfgPath != "":
		cfg, err := config.Load(*cfgPath, os.Environ())
		if err != nil {
			return err
		}
		e := cfg.Chains.ETH[0]
		for _, c := range cfg.Chains.ETH {
			if c.Network == *network {
				e = c
			}
		}
		scfg = ethSourceConfig(e)
		scfg.VerifyHeaderHash = scfg.VerifyHeaderHash && !*noVerify
		scfg.VerifyTxRoot = scfg.VerifyTxRoot && !*noVerify
		if *network == "" {
			*network = e.Network
		}
	default:
		ep, err := readEndpoints(*dataDir)
		if err != nil {
			return fmt.Errorf("export: no --rpc given and %w", err)
		}
		scfg.Endpoints = []eth.EndpointConfig{{Name: "dev", URL: ep.ETHRPC}}
		scfg.ChainID = ep.ETHChainID
		if *network == "" {
			*network = ep.ETHNetwork
		}
	}
	scfg.Network = *network
	if scfg.Network == "" {
		scfg.Network = "unknown" // replaced below once the chain id is known
	}
	src, err := eth.NewSource(ctx, scfg, nil, nil)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer src.Close()
	if *network == "" {
		id, err := src.ChainID(ctx)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		*network = eth.NetworkName(id)
		scfg.Network = *network
		src.Close()
		if src, err = eth.NewSource(ctx, scfg, nil, nil); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer src.Close()
	}

	var w io.Writer = os.Stdout
	var commit func() error
	if *out != "" {
		tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".partial-*")
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer os.Remove(tmp.Name())
		w = tmp
		commit = func() error {
			if err := tmp.Close(); err != nil {
				return err
			}
			return os.Rename(tmp.Name(), *out)
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc, err := export.NewWriter(bw, *format, types)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = follow.Range(ctx, src, *from, toH, *parallel, func(b *chain.Block) error { return enc.Write(b) })
	if err != nil {
		return fmt.Errorf("export %s blocks %d-%d: %w", *network, *from, toH, err)
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: write: %w", err)
	}
	if commit != nil {
		if err := commit(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(os.Stderr, "exported blocks %d-%d of eth/%s (%s) to %s\n", *from, toH, *network, strings.Join(types, ","), *out)
	}
	return nil
}
