package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/retry"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// devToken is a dev API bearer token (the files of devRoles, and
// operator-token: the dev operator's), kept in the data directory so it
// survives restarts.
func devToken(dir, file string) (string, error) {
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw[:])
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

// devFlagged are devnet accounts the dev feed lists: a simulated theft
// (the traffic generator keeps paying them, so screening hits show).
func devFlagged(d *devnet.Devnet) string {
	a := d.Accounts()
	return strings.ToLower(a[len(a)-2].Hex())
}

// importDevFeed imports the dev partner feed once Kafka is up: two devnet
// accounts as a theft and a mixer, and a Bitcoin address of the dev wallet
// as ransomware. Re-importing on restart changes nothing.
// With an alliance (shared), the theft comes from exchange-b's listing
// instead (an earlier run's theft in the feed is revoked).
func importDevFeed(ctx context.Context, sys *system, d *devnet.Devnet, bt *btcTraffic, treasury *devnet.ContractWallet, shared bool, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		return nil
	case <-sys.p.kafkaReady:
	}
	a := d.Accounts()
	var csv strings.Builder
	csv.WriteString("address,chain,network,category,confidence,tlp,description\n")
	if !shared {
		fmt.Fprintf(&csv, "%s,eth,%s,hack,95,amber,dev: simulated exchange theft\n", devFlagged(d), devNetwork)
	}
	fmt.Fprintf(&csv, "%s,eth,%s,mixer,70,green,dev: simulated mixer\n", strings.ToLower(a[len(a)-3].Hex()), devNetwork)
	if bt != nil {
		if addrs := bt.wallet.Addresses(); len(addrs) > 3 {
			fmt.Fprintf(&csv, "%s,btc,%s,ransomware,90,amber,dev: simulated ransomware wallet\n", addrs[3], devBTCNetwork)
		}
	}
	feed, err := intel.ParseCSV([]byte(csv.String()), "dev:partner-feed", "dev-partner", chain.ETH, time.Now().UTC().Truncate(time.Second))
	if err != nil {
		return fmt.Errorf("dev feed: %w", err)
	}
	// Deposit addresses of simulated users: devnet accounts the traffic
	// pays (the flagged ones pay them too, so held deposits show), and
	// addresses of the dev Bitcoin wallet.
	var entries []registry.Entry
	for i, acct := range a[:20] {
		entries = append(entries, registry.Entry{Chain: chain.ETH, Network: devNetwork, Address: strings.ToLower(acct.Hex()),
			Account: fmt.Sprintf("user-%d", i), Kind: registry.KindDeposit})
	}
	if treasury != nil {
		// The treasury is a hot wallet too: its sweep is an outflow.
		entries = append(entries, registry.Entry{Chain: chain.ETH, Network: devNetwork, Address: strings.ToLower(treasury.Proxy.Hex()),
			Account: "contract-wallet:dev-treasury", Kind: registry.KindHot})
	}
	if bt != nil {
		for i, addr := range bt.wallet.Addresses() {
			if i%7 == 0 && i > 3 {
				entries = append(entries, registry.Entry{Chain: chain.BTC, Network: devBTCNetwork, Address: addr,
					Account: fmt.Sprintf("user-btc-%d", i), Kind: registry.KindDeposit})
			}
		}
	}
	for i := range entries {
		if err := entries[i].Validate(); err != nil {
			return fmt.Errorf("dev deposit address: %w", err)
		}
	}
	err = retry.Do(ctx, restartPolicy, log, "dev intel feed: import failed", func(ctx context.Context) error {
		if err := sys.indicators.topic.Ensure(ctx); err != nil {
			return err
		}
		res, err := intel.Import(ctx, sys.indicators.topic, feed, intel.ImportOptions{AllowShrink: true})
		if err != nil {
			return err
		}
		if err := registry.Publish(ctx, sys.p.producer, entries); err != nil {
			return err
		}
		log.Info("dev intel feed and deposit addresses ready", "indicators_added", res.Added, "deposit_addresses", len(entries),
			"flagged_eth", devFlagged(d))
		return nil
	})
	if ctx.Err() != nil {
		return nil //nolint:nilerr // stopping
	}
	return err
}
