package dispatch

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// The devnet end to end: approved withdrawals are built, signed by the
// signer, broadcast, mined and confirmed on the block stream; a
// dispatcher stopped with a transaction in flight (requested and not
// signed; broadcast and not mined) is taken over by the next with no
// second request or signature; a reorganization that drops
// the block of a mined withdrawal sends the same transaction again, with
// an alert, and it is confirmed on the new branch.
func TestETHOnDevnet(t *testing.T) {
	ctx := context.Background()
	dev, brokers := devnetStream(t, "dispatch")

	r := newRig(t)
	r.connect(brokers)
	r.cfg = Config{Wallets: wallet.Config{ETH: []wallet.ETHWallet{{Name: "eth-hot", Network: "devnet", ChainID: devnet.ChainID,
		Key: r.key("p1", "eth"), MaxFeePerGas: "500000000000", MaxPriorityFeePerGas: "5000000000"}}},
		Confirmations: map[string]int{"eth/devnet": 3}, Rebroadcast: time.Hour}
	hot, err := r.cfg.Wallets.ETH[0].Address()
	require.NoError(t, err)
	// Fund the hot wallet from a devnet account.
	fund(t, dev, hot, big.NewInt(0).Mul(big.NewInt(10), big.NewInt(params.Ether)))
	r.startGate("eth/devnet")
	nodes, err := DialETH(ctx, []string{dev.HTTPURL()})
	require.NoError(t, err)
	t.Cleanup(nodes.Close)
	opts := Options{ETH: map[string]ETHNode{"devnet": nodes}}

	mine := func() { dev.Commit() }
	dst := common.HexToAddress("0x00000000000000000000000000000000c0ffee01")
	// Stopped with a's request written and no signer yet; the next
	// dispatcher verifies and broadcasts what the signer returns.
	stop := r.startDispatcher(opts)
	a := r.withdraw("a", "eth", "devnet", "1000000000000000000", dst.Hex())
	r.waitStatus(a, gate.StatusSigning, time.Minute, nil)
	stop()
	r.startSigner([]vault.Limit{{Chain: "eth", Network: "devnet", Asset: intent.Native, PerWithdrawal: "2000000000000000000"}})
	stop = r.startDispatcher(opts)
	wa := r.waitStatus(a, gate.StatusBroadcast, time.Minute, nil)
	// Stopped with a in the mempool, b approved meanwhile.
	stop()
	b := r.withdraw("b", "eth", "devnet", "500000000000000000", dst.Hex())
	r.startDispatcher(opts)
	wb := r.waitStatus(b, gate.StatusBroadcast, time.Minute, nil)
	require.Equal(t, *wa.Tx.Nonce+1, *wb.Tx.Nonce, "the next dispatcher held a's nonce")
	r.waitStatus(a, gate.StatusMined, time.Minute, mine)
	r.waitStatus(b, gate.StatusMined, time.Minute, mine)
	wa = r.gate.get(a)

	// Reorganize a's block out: the same transaction goes out again.
	require.NoError(t, dev.Reorg(int(dev.Head().Number.Uint64()-wa.Tx.Height+1)))
	dev.Rollback() // the node keeps nothing of the old branch: only the dispatcher's broadcast brings a back
	for range 2 {
		dev.Commit()
	}
	r.waitStatus(a, gate.StatusConfirmed, 2*time.Minute, mine)
	r.waitStatus(b, gate.StatusConfirmed, 2*time.Minute, mine)
	require.Contains(t, r.gate.alertTypes(), "withdrawal_reorged_out")
	require.Contains(t, r.gate.history[a], gate.StatusBroadcast)

	// Checked by go-ethereum: the receipt, the sender recovered from the
	// signature, the amount that arrived.
	for _, id := range []string{a, b} {
		w := r.gate.get(id)
		tx, _, err := dev.Client().TransactionByHash(ctx, common.HexToHash(w.Tx.TxID))
		require.NoError(t, err)
		from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(devnet.ChainID)), tx)
		require.NoError(t, err)
		require.Equal(t, hot, from)
		require.Equal(t, dst, *tx.To())
		rc, err := dev.Client().TransactionReceipt(ctx, tx.Hash())
		require.NoError(t, err)
		require.Equal(t, types.ReceiptStatusSuccessful, rc.Status)
		require.Equal(t, w.Tx.Block, rc.BlockHash.Hex(), "the block the stream says mined it")
	}
	bal, err := dev.Client().BalanceAt(ctx, dst, nil)
	require.NoError(t, err)
	require.Equal(t, "1500000000000000000", bal.String())
	reqs := r.signedOnce()
	require.Len(t, reqs, 2, "one request per withdrawal, across the restart")
}

// fund pays wei to a from the devnet's first account and mines it.
func fund(t testing.TB, dev *devnet.Devnet, a common.Address, wei *big.Int) {
	t.Helper()
	ctx := context.Background()
	k := dev.Key(0)
	n, err := dev.PendingNonce(ctx, crypto.PubkeyToAddress(k.PublicKey))
	require.NoError(t, err)
	h := dev.Head()
	tx, err := types.SignNewTx(k, types.LatestSignerForChainID(big.NewInt(devnet.ChainID)), &types.DynamicFeeTx{ChainID: big.NewInt(devnet.ChainID),
		Nonce: n, GasTipCap: big.NewInt(params.GWei), GasFeeCap: new(big.Int).Add(new(big.Int).Mul(h.BaseFee, big.NewInt(2)), big.NewInt(params.GWei)),
		Gas: 21000, To: &a, Value: wei})
	require.NoError(t, err)
	require.NoError(t, dev.Client().SendTransaction(ctx, tx))
	require.Eventually(t, func() bool {
		dev.Commit()
		rc, err := dev.Client().TransactionReceipt(ctx, tx.Hash())
		return err == nil && rc.Status == types.ReceiptStatusSuccessful
	}, 30*time.Second, 100*time.Millisecond)
}

// Dispatchers and signers stopped and started again at random points,
// withdrawals approved meanwhile: in the end every withdrawal is
// confirmed, asked to be signed once and signed once, and each
// destination received its amount exactly once.
func TestRandomRestarts(t *testing.T) {
	ctx := context.Background()
	dev, brokers := devnetStream(t, "restarts")
	r := newRig(t)
	r.connect(brokers)
	r.signerMayStop = true
	r.cfg = Config{Wallets: wallet.Config{ETH: []wallet.ETHWallet{{Name: "eth-hot", Network: "devnet", ChainID: devnet.ChainID,
		Key: r.key("p1", "eth"), MaxFeePerGas: "500000000000", MaxPriorityFeePerGas: "5000000000"}}},
		Confirmations: map[string]int{"eth/devnet": 2}, Rebroadcast: 2 * time.Second, Interval: 20 * time.Millisecond}
	hot, err := r.cfg.Wallets.ETH[0].Address()
	require.NoError(t, err)
	fund(t, dev, hot, new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether)))
	r.startGate("eth/devnet")
	nodes, err := DialETH(ctx, []string{dev.HTTPURL()})
	require.NoError(t, err)
	t.Cleanup(nodes.Close)
	opts := Options{ETH: map[string]ETHNode{"devnet": nodes}}
	limits := []vault.Limit{{Chain: "eth", Network: "devnet", Asset: intent.Native, PerWithdrawal: "1000000000000000000"}}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)) //nolint:gosec // test schedule
	const n = 12
	var ids []string
	dsts := map[string]common.Address{}
	for round := range 8 {
		stopD := r.startDispatcher(opts)
		stopS := r.startSigner(limits)
		for range 1 + rng.IntN(2) {
			if len(ids) < n {
				i := len(ids)
				dst := common.BigToAddress(big.NewInt(int64(0xd15c0000 + i)))
				id := r.withdraw(fmt.Sprint("rr", i), "eth", "devnet", fmt.Sprint(1000+i), dst.Hex())
				ids, dsts[id] = append(ids, id), dst
			}
		}
		if rng.IntN(2) == 0 {
			dev.Commit()
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		// Stop in either order: a signing recorded and not yet answered,
		// an answer not yet broadcast, a broadcast not yet mined.
		if rng.IntN(2) == 0 {
			stopD()
			stopS()
		} else {
			stopS()
			stopD()
		}
		t.Logf("round %d: stopped with %d withdrawals", round, len(ids))
	}
	for len(ids) < n {
		i := len(ids)
		dst := common.BigToAddress(big.NewInt(int64(0xd15c0000 + i)))
		id := r.withdraw(fmt.Sprint("rr", i), "eth", "devnet", fmt.Sprint(1000+i), dst.Hex())
		ids, dsts[id] = append(ids, id), dst
	}
	r.startDispatcher(opts)
	r.startSigner(limits)
	for _, id := range ids {
		r.waitStatus(id, gate.StatusConfirmed, 2*time.Minute, func() { dev.Commit() })
	}
	reqs := r.signedOnce()
	require.Len(t, reqs, n, "one request per withdrawal")
	for i, id := range ids {
		bal, err := dev.Client().BalanceAt(ctx, dsts[id], nil)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(1000+i), bal.String(), "withdrawal %s paid once", id)
	}
}
