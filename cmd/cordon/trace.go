package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/forensics/trace"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// storeFlags are the flags of the commands that read ClickHouse.
type storeFlags struct {
	addr, database, config, dataDir, network *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		addr:     fs.String("clickhouse", "", "ClickHouse native-protocol host:port (default: --config's clickhouse.addrs, else the dev system's endpoints.json)"),
		database: fs.String("database", "", "database (default: --config's clickhouse.database, else cordon)"),
		config:   fs.String("config", "", "take ClickHouse and network settings from this configuration file"),
		dataDir:  fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "dev data directory whose endpoints.json is used when neither --clickhouse nor --config is given"),
		network:  fs.String("network", "", "network as recorded by the watcher (default: the only one configured for the chain, or the dev system's)"),
	}
}

// open connects to ClickHouse and settles the network of chain c.
func (f storeFlags) open(ctx context.Context, c chain.Chain) (*clickhouse.Store, string, error) {
	cfg := clickhouse.Config{Database: *f.database}
	network := *f.network
	switch {
	case *f.config != "":
		file, err := config.Load(*f.config, os.Environ())
		if err != nil {
			return nil, "", err
		}
		cfg = file.ClickHouse.Config
		if *f.database != "" {
			cfg.Database = *f.database
		}
		if network == "" {
			var nets []string
			if c == chain.ETH {
				for _, e := range file.Chains.ETH {
					nets = append(nets, e.Config.Network)
				}
			} else {
				for _, b := range file.Chains.BTC {
					nets = append(nets, b.Config.Network)
				}
			}
			if len(nets) != 1 {
				return nil, "", fmt.Errorf("%s configures %d %s networks: say which with --network", *f.config, len(nets), c)
			}
			network = nets[0]
		}
	case *f.addr == "":
		ep, err := readEndpoints(*f.dataDir)
		if err != nil {
			return nil, "", fmt.Errorf("no --clickhouse given and %w", err)
		}
		if ep.ClickHouse == "" {
			return nil, "", fmt.Errorf("the dev system in %s runs without ClickHouse", *f.dataDir)
		}
		cfg.Addrs = []string{ep.ClickHouse}
		if network == "" {
			network = ep.ETHNetwork
			if c == chain.BTC && ep.BTCRPC != nil {
				network = ep.BTCRPC.Network
			}
		}
	}
	if *f.addr != "" {
		cfg.Addrs = []string{*f.addr}
	}
	if network == "" {
		return nil, "", errors.New("--network is required (the network the watcher recorded, e.g. mainnet)")
	}
	s, err := clickhouse.Open(ctx, cfg)
	return s, network, err
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdTrace(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	chainName := fs.String("chain", "", "chain: eth or btc")
	var addrs, sinkFiles listFlag
	fs.Var(&addrs, "address", "start address (repeat, or comma separated)")
	hops := fs.Int("hops", 3, "hops to follow (1-20)")
	backward := fs.Bool("backward", false, "follow funds backward, to where they came from")
	since := fs.String("since", "", "only transfers at or after this time: RFC 3339, YYYY-MM-DD, or a duration ago (72h)")
	until := fs.String("until", "", "only transfers at or before this time (same forms)")
	minAmount := fs.String("min-amount", "", "drop transfers below this: base units (wei, satoshi, token units) or a coin amount with its unit (1.5eth, 20gwei, 0.1btc, 5000sat)")
	asset := fs.String("asset", "", "eth: native, or a token contract address (default: every asset)")
	fs.Var(&sinkFiles, "sinks", "CSV of known addresses where the trace stops (header: address[,label,kind,chain,network]); repeatable")
	maxFanout := fs.Int("max-fanout", 200, "an address with more transfers than this in one hop is a hub: shown, not followed")
	maxEdges := fs.Int("max-edges", 10000, "stop after this many transfers (the result says it is truncated)")
	format := fs.String("format", "table", "table, json, dot or html")
	out := fs.String("out", "", "output file (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := chain.Chain(*chainName)
	if c != chain.ETH && c != chain.BTC {
		return fmt.Errorf("trace: --chain %q: want eth or btc", *chainName)
	}
	if !validFormat(*format) {
		return fmt.Errorf("trace: --format %q: want one of %s", *format, strings.Join(trace.Formats, ", "))
	}
	opts := trace.Options{Chain: c, Hops: *hops, Backward: *backward, MaxFanout: *maxFanout, MaxEdges: *maxEdges, Sinks: map[string]trace.Sink{}}
	now := time.Now()
	var err error
	if opts.Since, err = parseWhen(*since, now); err != nil {
		return fmt.Errorf("trace: --since: %w", err)
	}
	if opts.Until, err = parseWhen(*until, now); err != nil {
		return fmt.Errorf("trace: --until: %w", err)
	}
	if *minAmount != "" {
		amt, err := chain.ParseAmountIn(c, *minAmount)
		if err != nil {
			return fmt.Errorf("trace: --min-amount: %w", err)
		}
		opts.MinAmount = amt.Big()
	}
	store, network, err := sf.open(ctx, c)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	defer func() { _ = store.Close() }()
	opts.Network = network
	for _, list := range addrs {
		for _, a := range strings.Split(list, ",") {
			n, err := address.Normalize(c, network, a)
			if err != nil {
				return fmt.Errorf("trace: --address: %w", err)
			}
			opts.From = append(opts.From, n)
		}
	}
	if len(opts.From) == 0 {
		return errors.New("trace: --address is required")
	}
	switch {
	case *asset == "" || *asset == chain.AssetNative:
		opts.Asset = *asset
	case c == chain.BTC:
		return fmt.Errorf("trace: --asset %q: Bitcoin has only the native asset", *asset)
	default:
		if opts.Asset, err = address.Normalize(c, network, *asset); err != nil {
			return fmt.Errorf("trace: --asset: want native or a token contract: %w", err)
		}
	}
	for _, p := range sinkFiles {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("trace: --sinks: %w", err)
		}
		err = trace.ReadSinks(f, p, c, network, opts.Sinks)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("trace: --sinks: %w", err)
		}
	}
	res, err := trace.Run(ctx, store, opts)
	if err != nil {
		return err
	}
	return writeOut(*out, func(w io.Writer) error { return trace.Write(w, res, *format) })
}

func validFormat(f string) bool {
	for _, v := range trace.Formats {
		if f == v {
			return true
		}
	}
	return false
}

// writeOut writes to path atomically, or to standard output.
func writeOut(path string, write func(io.Writer) error) error {
	if path == "" {
		return write(os.Stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// parseWhen reads a time: RFC 3339, a date (UTC midnight), or a duration
// before now; "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-21T10:00:00Z), a date (2026-11-21) or a duration ago (72h)", s)
}
