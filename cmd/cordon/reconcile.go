package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/btcsuite/btcd/rpcclient"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/cordonhq/cordon/forensics/reconcile"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
)

// errMismatch makes `cordon reconcile` exit non-zero after printing its
// report.
var errMismatch = errors.New("reconcile: balances differ")

func cmdReconcile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	chainName := fs.String("chain", "", "chain: eth or btc")
	height := fs.Uint64("height", 0, "block to compare at (default: the newest canonical block in ClickHouse)")
	blocks := fs.Uint64("blocks", 64, "window of recent blocks whose accounts are checked (Ethereum needs the node's state at its start: keep it under 128 on a full node)")
	sampleN := fs.Int("sample", 200, "check at most this many accounts, drawn at random (0: all)")
	seed := fs.Uint64("seed", 0, "seed of the sample (added to the height, so a rerun at the same height checks the same accounts)")
	format := fs.String("format", "table", "table or json")
	rpcURL := fs.String("rpc", "", "node JSON-RPC URL (default: --config's first endpoint, else the dev system's)")
	rpcUser := fs.String("rpc-user", "", "btc: RPC user")
	rpcPass := fs.String("rpc-pass", "", "btc: RPC password (or env:NAME / file:PATH)")
	rpcCookie := fs.String("rpc-cookie", "", "btc: the node's .cookie file instead of user and password")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long, retries included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("reconcile: --timeout %s: want a positive duration", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := chain.Chain(*chainName)
	if c != chain.ETH && c != chain.BTC {
		return fmt.Errorf("reconcile: --chain %q: want eth or btc", *chainName)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("reconcile: --format %q: want table or json", *format)
	}
	store, network, err := sf.open(ctx, c)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer func() { _ = store.Close() }()
	opts := reconcile.Options{Network: network, Height: *height, Blocks: *blocks, Sample: *sampleN, Seed: *seed}
	var rep *reconcile.Report
	if c == chain.ETH {
		ecfg, err := ethEndpoints(*rpcURL, &network, *sf.config, *sf.dataDir, false)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		ep := ecfg.Endpoints[0]
		var dial []rpc.ClientOption
		for k, v := range ep.Headers {
			dial = append(dial, rpc.WithHeader(k, v.Value()))
		}
		rc, err := rpc.DialOptions(ctx, ep.URL.Value(), dial...)
		if err != nil {
			return fmt.Errorf("reconcile: node %s: %w", ep.Name, err)
		}
		client := ethclient.NewClient(rc)
		defer client.Close()
		if rep, err = retryNotComparable(ctx, func() (*reconcile.Report, error) { return reconcile.ETH(ctx, store, client, opts) }); err != nil {
			return err
		}
	} else {
		var pass config.Secret
		if *rpcPass != "" {
			if pass, err = config.ParseSecret(*rpcPass); err != nil {
				return fmt.Errorf("reconcile: --rpc-pass: %w", err)
			}
		}
		bcfg, err := btcEndpoints(*rpcURL, *rpcUser, pass, *rpcCookie, &network, *sf.config, *sf.dataDir)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		cc, name, err := btc.ConnConfig(bcfg.Endpoints[0])
		if err != nil {
			return fmt.Errorf("reconcile: node %s: %w", bcfg.Endpoints[0].Name, err)
		}
		client, err := rpcclient.New(cc, nil)
		if err != nil {
			return fmt.Errorf("reconcile: node %s: %w", name, err)
		}
		defer client.Shutdown()
		if rep, err = retryNotComparable(ctx, func() (*reconcile.Report, error) { return reconcile.BTC(ctx, store, client, opts) }); err != nil {
			return err
		}
	}
	if err := writeReport(os.Stdout, rep, *format); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d mismatches at %s/%s height %d", errMismatch, len(rep.Mismatches), rep.Chain, rep.Network, rep.Height)
	}
	return nil
}

// retryNotComparable reruns check, a second apart, while ClickHouse and
// the node hold different chains at the height (a reorg the loader has not
// applied yet, or a block whose rows are still loading), until ctx ends.
// Giving up, it says how many attempts ran and why the last could not
// compare.
func retryNotComparable(ctx context.Context, check func() (*reconcile.Report, error)) (*reconcile.Report, error) {
	start := time.Now()
	var reason error // why the last finished attempt could not compare
	for attempt := 1; ; attempt++ {
		rep, err := check()
		switch {
		case err == nil:
			return rep, nil
		case errors.Is(err, reconcile.ErrNotComparable):
			reason = err
		case ctx.Err() != nil && reason != nil:
			return nil, fmt.Errorf("reconcile: gave up after %s in %s (%s; the last cut short): %w",
				attempts(attempt), time.Since(start).Round(time.Millisecond), ended(ctx), reason)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("reconcile: gave up in %s (%s): %w", time.Since(start).Round(time.Millisecond), ended(ctx), err)
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reconcile: gave up after %s in %s (%s): %w",
				attempts(attempt), time.Since(start).Round(time.Millisecond), ended(ctx), reason)
		case <-time.After(time.Second):
		}
	}
}

// ended says why ctx ended.
func ended(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "--timeout"
	}
	return "interrupted"
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func writeReport(w io.Writer, rep *reconcile.Report, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "reconcile %s/%s at height %d (window %d-%d): %d accounts touched, %d checked, %d mismatches, %d skipped\n",
		rep.Chain, rep.Network, rep.Height, rep.Base+1, rep.Height, rep.Touched, rep.Checked, len(rep.Mismatches), len(rep.Skipped))
	if len(rep.Mismatches) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tASSET\tCLICKHOUSE\tNODE\tDETAIL")
		for _, m := range rep.Mismatches {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Address, m.Asset, m.Store, m.Node, m.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped %s %s: %s\n", s.Address, s.Asset, s.Detail)
	}
	return nil
}
