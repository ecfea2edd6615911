package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// TestCreditConfirmsWithTheNodes is the attack of a compromised watcher,
// or anyone able to write the block topics: block records the chain never
// had. Crediting runs as `cordon run` wires it, asking the devnet's
// endpoints (quorum 2 of 2) through the watchers' sources. A real deposit
// is credited; a made-up transfer added to a real block, a block under a
// hash the chain does not have, a sanctioned payer rewritten as a clean
// one in a real block, and a fake tip claiming depth the chain does not
// have credit nothing: the first three are held with a deposit_disputed
// alert naming what the nodes say, the last waits.
func TestCreditConfirmsWithTheNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 3}, nil)
	require.NoError(t, err)
	acct := dev.Accounts()
	lower := func(i int) string { return strings.ToLower(acct[i].Hex()) }
	real, forgedIn, forgedHash, fakeTip := lower(11), lower(12), lower(13), lower(14)
	txh, err := tr.Pay(ctx, 0, acct[11], big.NewInt(5e17))
	require.NoError(t, err)
	// A payment from a sanctioned account (account 2), which the forger
	// rewrites as paid by a clean one.
	dodged := lower(15)
	txd, err := tr.Pay(ctx, 2, acct[15], big.NewInt(3e17))
	require.NoError(t, err)
	dev.Commit()
	for range 5 {
		dev.Commit()
	}
	src, err := eth.NewSource(ctx, eth.Config{Network: "devnet", ChainID: devnet.ChainID, Quorum: 2,
		Endpoints: []eth.EndpointConfig{{Name: "http", URL: iconfig.SecretValue(dev.HTTPURL())}, {Name: "ws", URL: iconfig.SecretValue(dev.WSURL())}}},
		nil, nil)
	require.NoError(t, err)
	defer src.Close()
	hctx, hstop := context.WithCancel(ctx)
	defer hstop()
	go func() { _ = src.Pool().Run(hctx) }()
	head, err := src.Head(ctx)
	require.NoError(t, err)

	// The stream as a forger writes it: the real blocks, one of them with
	// a made-up transfer added, then a block the chain does not have at a
	// real height, then a tip far above the chain's.
	var ups []chain.Update
	seq := uint64(0)
	add := func(b *chain.Block) {
		seq++
		ups = append(ups, chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: seq, Header: b.Header,
			TxCount: len(b.Transactions), TransferCount: len(b.Transfers)}, Block: b})
	}
	fake := func(b *chain.Block, to string, n int) {
		tx := fmt.Sprintf("0x%064x", 0xf00+n)
		b.Transactions = append(b.Transactions, chain.Transaction{V: 1, Chain: chain.ETH, Network: "devnet", Hash: tx, From: lower(1), To: to,
			Value: chain.AmountFromUint64(7e17)})
		b.Transfers = append(b.Transfers, chain.Transfer{V: 1, Chain: chain.ETH, Network: "devnet", Asset: chain.AssetNative, Standard: chain.StandardNative,
			TxHash: tx, From: lower(1), To: to, Amount: chain.AmountFromUint64(7e17), BlockHash: b.Hash, BlockHeight: b.Height})
	}
	var paidAt uint64
	for h := uint64(0); h <= head; h++ {
		b, err := src.BlockAt(ctx, h)
		require.NoError(t, err)
		for _, x := range b.Transfers {
			if x.TxHash == strings.ToLower(txh.Hex()) {
				paidAt = h
			}
		}
		if h == 2 {
			fake(b, forgedIn, 1) // a real block with a transfer it does not hold
		}
		for i := range b.Transfers {
			if b.Transfers[i].TxHash == strings.ToLower(txd.Hex()) {
				b.Transfers[i].From = lower(1) // the sanctioned payer rewritten as a clean one
			}
		}
		for i := range b.Transactions {
			if b.Transactions[i].Hash == strings.ToLower(txd.Hex()) {
				b.Transactions[i].From = lower(1)
			}
		}
		add(b)
	}
	require.NotZero(t, paidAt)
	// The chain's two newest blocks replaced by a block the chain does
	// not have, under another hash, then fake blocks on top of it.
	realHead, below := ups[len(ups)-1].Block, ups[len(ups)-2].Block
	for _, b := range []*chain.Block{realHead, below} {
		seq++
		ups = append(ups, chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: seq, Header: b.Header}})
	}
	last := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "devnet", Height: below.Height, Hash: fmt.Sprintf("0x%064x", 0xbad0),
		ParentHash: below.ParentHash, Time: below.Time}}
	fake(last, forgedHash, 2)
	add(last)
	for i := uint64(1); i <= 5; i++ {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "devnet", Height: below.Height + i, Hash: fmt.Sprintf("0x%064x", 0xbad0+i),
			ParentHash: last.Hash, Time: last.Time + int64(i)}}
		if i == 2 {
			fake(b, fakeTip, 3) // above the chain's head, made deep by the fake blocks on top of it
		}
		add(b)
		last = b
	}

	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), Topics: kafka.DefaultTopics(), CreateTopics: true, Partitions: 1}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.EnsureTopics(ctx))
	require.NoError(t, prod.Publish(ctx, ups))

	reg := registry.NewIndex()
	for i, a := range []string{real, forgedIn, forgedHash, fakeTip, dodged} {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "devnet", Address: a, Account: fmt.Sprint("u", i), Asset: "*", Kind: registry.KindDeposit})
	}
	var mu sync.Mutex
	last2 := map[string]credit.DepositEvent{}
	sanctioned := lower(2)
	screen := func(_ chain.Chain, _ string, a string) []credit.Hit {
		if strings.EqualFold(a, sanctioned) {
			return []credit.Hit{{Address: a, Indicator: "ofac:eth/indicator--1", Category: "sanctions", Source: "ofac", Confidence: 100}}
		}
		return nil
	}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Registry: reg, Tokens: credit.Tokens{}, Screen: screen,
		Policy: func(chain.Chain, string) credit.Policy { return credit.Policy{Confirmations: 2} },
		Nodes:  credit.Sources{"eth/devnet": src},
		Committed: func(evs []credit.DepositEvent) {
			mu.Lock()
			for _, ev := range evs {
				if ev.Asset == chain.AssetNative { // the traffic's token transfers to these addresses aside
					last2[ev.Address] = ev
				}
			}
			mu.Unlock()
		}})
	require.NoError(t, err)
	sctx, sstop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	defer func() { sstop(); require.NoError(t, <-done) }()
	status := func(a string) credit.DepositEvent {
		mu.Lock()
		defer mu.Unlock()
		return last2[a]
	}
	require.Eventually(t, func() bool {
		return status(real).Status == credit.StatusCredited && status(forgedIn).Status == credit.StatusHeld &&
			status(forgedHash).Status == credit.StatusHeld && status(dodged).Status == credit.StatusHeld
	}, 2*time.Minute, 100*time.Millisecond, "real %+v, forged %+v, forged hash %+v", status(real), status(forgedIn), status(forgedHash))
	require.Contains(t, strings.Join(status(forgedIn).Reasons, ";"), "does not pay", "a forged transfer in a real block")
	require.Contains(t, strings.Join(status(forgedHash).Reasons, ";"), "the nodes do not confirm block", "a block the chain does not have")
	require.Contains(t, strings.Join(status(forgedHash).Reasons, ";"), "http reports "+below.Hash, "the reason names what each endpoint reports")
	require.Contains(t, strings.Join(status(dodged).Reasons, ";"), "its senders are", "a sanctioned payer rewritten in a real block")
	require.Equal(t, credit.StatusPending, status(fakeTip).Status, "a block above the nodes' head is not deep, whatever the stream claims")

	// The disputed deposit raised an alert.
	found := false
	require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "test"}, func(r *kafka.Record) error {
		var a chain.Alert
		if json.Unmarshal(r.Value, &a) == nil && a.Type == "deposit_disputed" && a.Details["account"] == "u1" {
			found = true
		}
		return nil
	}))
	require.True(t, found, "a deposit_disputed alert")
}

// BenchmarkConfirmDevnet is what crediting asks the endpoints for each
// deposit height it confirms (cached for the round): the agreed tip, every
// endpoint's hash at the height, and the agreed block read back — against
// three endpoints of the devnet (quorum 2), over real JSON-RPC on
// loopback. Its time adds to a deposit's crediting latency once per
// height (BenchmarkCreditLatency in credit/ measures the rest).
func BenchmarkConfirmDevnet(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(b, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 4}, nil)
	require.NoError(b, err)
	for range 20 {
		require.NoError(b, tr.Step(ctx, 20))
	}
	src, err := eth.NewSource(ctx, eth.Config{Network: "devnet", ChainID: devnet.ChainID, Quorum: 2,
		Endpoints: []eth.EndpointConfig{{Name: "http-1", URL: iconfig.SecretValue(dev.HTTPURL())}, {Name: "ws", URL: iconfig.SecretValue(dev.WSURL())},
			{Name: "http-2", URL: iconfig.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(b, err)
	defer src.Close()
	hctx, hstop := context.WithCancel(ctx)
	defer hstop()
	go func() { _ = src.Pool().Run(hctx) }()
	n := credit.Sources{"eth/devnet": src}
	head, err := src.Head(ctx)
	require.NoError(b, err)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		h := head - uint64(i%10)
		start := time.Now()
		_, _, err := n.Tip(ctx, chain.ETH, "devnet")
		require.NoError(b, err)
		reps, _, err := n.HashesAt(ctx, chain.ETH, "devnet", h)
		require.NoError(b, err)
		require.Len(b, reps, 3)
		_, err = n.BlockAt(ctx, chain.ETH, "devnet", h)
		require.NoError(b, err)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	b.Logf("%d confirmations of a height (tip, 3 hashes, the block read back; blocks of ~20 transactions): p50 %s, p99 %s", len(lat), q(0.5), q(0.99))
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
}
