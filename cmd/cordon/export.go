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

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/ingest/export"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/follow"
)

func cmdExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	chainName := fs.String("chain", "", "chain to export: eth or btc")
	rpcURL := fs.String("rpc", "", "node JSON-RPC URL (default: --config's endpoints, else the dev system's endpoints.json)")
	rpcUser := fs.String("rpc-user", "", "btc: RPC user")
	rpcPass := fs.String("rpc-pass", "", "btc: RPC password (or env:NAME / file:PATH)")
	rpcCookie := fs.String("rpc-cookie", "", "btc: the node's .cookie file instead of user and password")
	network := fs.String("network", "", "network label written into records; btc: mainnet, testnet, signet, regtest or simnet (default: from the config or the dev system; eth: derived from the chain id)")
	cfgPath := fs.String("config", "", "take endpoints from this configuration file")
	dataDir := fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "dev data directory whose endpoints.json is used when neither --rpc nor --config is given")
	from := fs.Uint64("from", 0, "first block height")
	to := fs.String("to", "", "last block height (inclusive)")
	format := fs.String("format", "jsonl", "jsonl or csv")
	records := fs.String("records", "", "record types, comma separated: eth block,transaction,transfer; btc block,transaction,output,spend (jsonl default: all; csv: exactly one, default transfer or output)")
	out := fs.String("out", "", "output file (default: standard output); written atomically")
	parallel := fs.Int("parallel", 8, "concurrent block fetches")
	noVerify := fs.Bool("no-verify", false, "eth: skip recomputing block hashes and transactions roots (for chains go-ethereum cannot hash)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := chain.Chain(*chainName)
	if c != chain.ETH && c != chain.BTC {
		return fmt.Errorf("export: --chain %q: supported chains: eth, btc", *chainName)
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
	types, err := export.ParseRecords(*format, *records, c)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var src follow.Source
	if c == chain.BTC {
		var pass iconfig.Secret
		if *rpcPass != "" {
			if pass, err = iconfig.ParseSecret(*rpcPass); err != nil {
				return fmt.Errorf("export: --rpc-pass: %w", err)
			}
		}
		s, err := btcExportSource(*rpcURL, *rpcUser, pass, *rpcCookie, network, *cfgPath, *dataDir)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer s.Close()
		src = s
	} else {
		s, err := ethExportSource(ctx, *rpcURL, network, *cfgPath, *dataDir, *noVerify)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer s.Close()
		src = s
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
	enc, err := export.NewWriter(bw, *format, types, c)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = follow.Range(ctx, src, *from, toH, *parallel, func(b *chain.Block) error { return enc.Write(b) })
	if err != nil {
		return fmt.Errorf("export %s/%s blocks %d-%d: %w", c, *network, *from, toH, err)
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
		fmt.Fprintf(os.Stderr, "exported blocks %d-%d of %s/%s (%s) to %s\n", *from, toH, c, *network, strings.Join(types, ","), *out)
	}
	return nil
}

// ethExportSource builds the Ethereum source of an export from --rpc,
// --config or the dev system's endpoints.json; it sets *network when empty.
func ethExportSource(ctx context.Context, rpcURL string, network *string, cfgPath, dataDir string, noVerify bool) (*eth.Source, error) {
	scfg, err := ethEndpoints(rpcURL, network, cfgPath, dataDir, noVerify)
	if err != nil {
		return nil, err
	}
	scfg.Network = *network
	if scfg.Network == "" {
		scfg.Network = "unknown" // replaced below once the chain id is known
	}
	src, err := eth.NewSource(ctx, scfg, nil, nil)
	if err != nil {
		return nil, err
	}
	if *network != "" {
		return src, nil
	}
	id, err := src.ChainID(ctx)
	src.Close()
	if err != nil {
		return nil, err
	}
	*network = eth.NetworkName(id)
	scfg.Network = *network
	return eth.NewSource(ctx, scfg, nil, nil)
}

// ethEndpoints resolves the Ethereum endpoints from --rpc, --config or the
// dev system's endpoints.json; it sets *network when empty and known.
func ethEndpoints(rpcURL string, network *string, cfgPath, dataDir string, noVerify bool) (eth.Config, error) {
	var scfg eth.Config
	switch {
	case rpcURL != "":
		scfg.Endpoints = []eth.EndpointConfig{{Name: "rpc", URL: iconfig.SecretValue(rpcURL)}}
	case cfgPath != "":
		cfg, err := config.Load(cfgPath, os.Environ())
		if err != nil {
			return scfg, err
		}
		if len(cfg.Chains.ETH) == 0 {
			return scfg, fmt.Errorf("%s has no chains.eth entry", cfgPath)
		}
		scfg = cfg.Chains.ETH[0].Config
		for _, c := range cfg.Chains.ETH {
			if c.Config.Network == *network {
				scfg = c.Config
			}
		}
		if *network == "" {
			*network = scfg.Network
		}
	default:
		ep, err := readEndpoints(dataDir)
		if err != nil {
			return scfg, fmt.Errorf("no --rpc given and %w", err)
		}
		scfg.Endpoints = []eth.EndpointConfig{{Name: "dev", URL: iconfig.SecretValue(ep.ETHRPC)}}
		scfg.ChainID = ep.ETHChainID
		if *network == "" {
			*network = ep.ETHNetwork
		}
	}
	if noVerify {
		off := false
		scfg.VerifyHeaderHash, scfg.VerifyTxRoot = &off, &off
	}
	return scfg, nil
}

// btcExportSource builds the Bitcoin source of an export from --rpc (with
// --rpc-user/--rpc-pass or --rpc-cookie), --config or the dev system's
// endpoints.json; it sets *network when empty.
func btcExportSource(rpcURL, user string, pass iconfig.Secret, cookie string, network *string, cfgPath, dataDir string) (*btc.Source, error) {
	scfg, err := btcEndpoints(rpcURL, user, pass, cookie, network, cfgPath, dataDir)
	if err != nil {
		return nil, err
	}
	return btc.NewSource(scfg, nil, nil)
}

// btcEndpoints resolves the Bitcoin endpoints from --rpc (with
// --rpc-user/--rpc-pass or --rpc-cookie), --config or the dev system's
// endpoints.json; it sets *network when empty.
func btcEndpoints(rpcURL, user string, pass iconfig.Secret, cookie string, network *string, cfgPath, dataDir string) (btc.Config, error) {
	var scfg btc.Config
	switch {
	case rpcURL != "":
		if *network == "" {
			return scfg, errors.New("--network is required with --rpc for btc (mainnet, testnet, signet, regtest or simnet)")
		}
		scfg.Endpoints = []btc.EndpointConfig{{Name: "rpc", URL: iconfig.SecretValue(rpcURL), User: user, Password: pass, CookieFile: cookie}}
	case cfgPath != "":
		cfg, err := config.Load(cfgPath, os.Environ())
		if err != nil {
			return scfg, err
		}
		if len(cfg.Chains.BTC) == 0 {
			return scfg, fmt.Errorf("%s has no chains.btc entry", cfgPath)
		}
		scfg = cfg.Chains.BTC[0].Config
		for _, c := range cfg.Chains.BTC {
			if c.Config.Network == *network {
				scfg = c.Config
			}
		}
		*network = scfg.Network
	default:
		ep, err := readEndpoints(dataDir)
		if err != nil {
			return scfg, fmt.Errorf("no --rpc given and %w", err)
		}
		if ep.BTCRPC == nil {
			return scfg, fmt.Errorf("the dev system in %s runs no bitcoin node", dataDir)
		}
		scfg.Endpoints = []btc.EndpointConfig{{Name: "dev", URL: iconfig.SecretValue(ep.BTCRPC.URL), User: ep.BTCRPC.User,
			Password: iconfig.SecretValue(ep.BTCRPC.Password)}}
		if *network == "" {
			*network = ep.BTCRPC.Network
		}
	}
	scfg.Network = *network
	return scfg, nil
}
