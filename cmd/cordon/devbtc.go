package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/watchers/btc/btcnode"
)

// btcTraffic is the dev system's Bitcoin side: a btcd regtest node and the
// wallet that mines, pays and reorganizes it.
type btcTraffic struct {
	node   *btcnode.Node
	wallet *btcnode.Wallet
	log    *slog.Logger
	txs    atomic.Uint64
}

const (
	devBTCSeed = "cordon-dev"
	// devBTCNetwork is simnet: btcd keeps a simnet chain across restarts
	// (it deletes a regtest one).
	devBTCNetwork = "simnet"
)

// startBTC starts btcd with its chain in dir. Without a btcd binary it
// says so and returns nil: the dev system runs without Bitcoin.
func startBTC(ctx context.Context, dir string, log *slog.Logger) (*btcTraffic, error) {
	bin, err := btcnode.FindBtcd()
	if err != nil {
		log.Warn("bitcoin disabled", "reason", err)
		return nil, nil
	}
	addr, err := btcnode.MiningAddress(devBTCNetwork, devBTCSeed)
	if err != nil {
		return nil, err
	}
	node, err := btcnode.Start(ctx, btcnode.Config{Bin: bin, Dir: dir, Network: devBTCNetwork, MiningAddr: addr, TxIndex: true})
	if err != nil {
		return nil, err
	}
	w, err := btcnode.NewWallet(node, devBTCNetwork, devBTCSeed, uint64(time.Now().UnixNano()))
	if err != nil {
		node.Stop()
		return nil, err
	}
	if err := w.Bootstrap(); err != nil {
		node.Stop()
		return nil, fmt.Errorf("btc wallet: %w", err)
	}
	h, _ := w.Height()
	log.Info("bitcoin simnet node up", "rpc", node.URL, "height", h, "data", dir)
	return &btcTraffic{node: node, wallet: w, log: log.With("component", "btc-traffic")}, nil
}

// run mines a block every interval with txs wallet transactions, and
// makes a one or two block reorg every reorgEvery blocks on average.
func (b *btcTraffic) run(ctx context.Context, interval time.Duration, txs, reorgEvery int) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		//nolint:gosec // traffic simulation, not key material
		if reorgEvery > 0 && rand.IntN(reorgEvery) == 0 {
			depth := 1 + rand.IntN(2) //nolint:gosec // as above
			if err := b.wallet.Reorg(depth); err != nil {
				b.log.Warn("reorg failed", "err", err)
			} else {
				b.log.Info("made a bitcoin reorg", "depth", depth)
			}
			continue
		}
		for range txs {
			if _, err := b.wallet.Pay(1+rand.IntN(3), 1+rand.IntN(6)); err != nil { //nolint:gosec // traffic simulation
				b.log.Debug("payment skipped", "err", err)
				continue
			}
			b.txs.Add(1)
		}
		if _, err := b.wallet.Mine(1); err != nil {
			return fmt.Errorf("btc traffic: %w", err)
		}
	}
}
