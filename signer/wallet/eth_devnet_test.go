package wallet_test

import (
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/txcheck"
	"github.com/cordonhq/cordon/signer/wallet"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

const ethNetwork = "devnet"

// ledgerSink is the follow.Sink the test puts between the eth watcher
// and the nonce ledger: each added block with its normalized
// transactions goes to AddBlock, each removed block to RemoveBlock, in
// the stream's order, then to a MemorySink that keeps the checkpoint.
// The ledger can be swapped (a restart from its snapshot).
type ledgerSink struct {
	mem    *followtest.MemorySink
	ledger atomic.Pointer[wallet.NonceLedger]
}

func (s *ledgerSink) Publish(ctx context.Context, updates []chain.Update) error {
	l := s.ledger.Load()
	for _, u := range updates {
		var err error
		switch u.Event.Type {
		case chain.BlockAdded:
			err = l.AddBlock(u.Event, u.Block.Transactions)
		case chain.BlockRemoved:
			err = l.RemoveBlock(u.Event)
		default:
			err = errors.New("unknown event type " + string(u.Event.Type))
		}
		if err != nil {
			return err
		}
	}
	return s.mem.Publish(ctx, updates)
}

func (s *ledgerSink) Checkpoint(ctx context.Context, c chain.Chain, network string, window int) (chain.Checkpoint, error) {
	return s.mem.Checkpoint(ctx, c, network, window)
}

// ethRig is a devnet with its traffic (the ERC-20 token), a hot wallet
// whose key is a devkey key, the nonce ledger fed by the real watcher,
// and the second risk layer's policy.
type ethRig struct {
	t      *testing.T
	ctx    context.Context
	dev    *devnet.Devnet
	tr     *devnet.Traffic
	w      wallet.ETHWallet
	addr   common.Address
	signer *keys.Signer
	sink   *ledgerSink
	f      *follow.Follower
	policy txcheck.ETHPolicy
	tip    *big.Int
	signed map[string]*types.Transaction // by lowercase hash: what a rebroadcast sends
}

func newETHRig(t *testing.T) *ethRig {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	dev, err := devnet.Start(devnet.Config{Seed: "wallet-eth", Accounts: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 7}, nil)
	require.NoError(t, err)

	path := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, keys.Generate(path, []string{"eth-hot"}))
	s, err := keys.Load(path)
	require.NoError(t, err)
	pub, err := s.PublicKey(ctx, "eth-hot")
	require.NoError(t, err)
	cfg := wallet.Config{ETH: []wallet.ETHWallet{{Name: "eth-hot", Network: ethNetwork, ChainID: devnet.ChainID,
		Key: wallet.KeyRef{Plugin: "devkey", KeyID: "eth-hot", PublicKey: hex.EncodeToString(pub)},
		// The devnet runs go-ethereum's newest fork, whose storage writes
		// cost more than mainnet's: a token transfer to a new holder
		// needs about 150000 gas, above the default limit.
		GasToken:     300_000,
		MaxFeePerGas: "100000000000", MaxPriorityFeePerGas: "2000000000"}}}
	var p config.Problems
	cfg.Validate(&p, "wallet")
	require.NoError(t, p.Err())
	w := cfg.ETH[0]
	addr, err := w.Address()
	require.NoError(t, err)

	r := &ethRig{t: t, ctx: ctx, dev: dev, tr: tr, w: w, addr: addr, signer: s, tip: big.NewInt(params.GWei),
		signed: map[string]*types.Transaction{},
		policy: txcheck.ETHPolicy{Network: ethNetwork, ChainID: devnet.ChainID, MaxGas: 300_000,
			MaxFeePerGas: big.NewInt(100 * params.GWei), MaxPriorityFeePerGas: big.NewInt(2 * params.GWei)}}

	// Fund the hot wallet from devnet account 1 (which NewTraffic gave
	// tokens): 10 ETH and 1,000,000 token units.
	_, err = tr.Pay(ctx, 1, addr, new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether)))
	require.NoError(t, err)
	_, err = tr.PayToken(ctx, 1, addr, big.NewInt(1_000_000))
	require.NoError(t, err)
	dev.Commit()
	bal, err := dev.Client().BalanceAt(ctx, addr, nil)
	require.NoError(t, err)
	require.Equal(t, new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether)), bal)
	require.Equal(t, big.NewInt(1_000_000), r.tokenBalance(addr))

	// The ledger is fed by the eth watcher over the devnet's JSON-RPC,
	// from the head on.
	src, err := eth.NewSource(ctx, eth.Config{Network: ethNetwork, ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "devnet", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	r.sink = &ledgerSink{mem: followtest.NewMemorySink()}
	r.sink.ledger.Store(wallet.NewNonceLedger(ethNetwork, addr))
	r.f = follow.New(follow.Config{Chain: chain.ETH, Network: ethNetwork, StartHeight: follow.StartHead, PollInterval: 20 * time.Millisecond},
		src, r.sink, nil, nil, nil, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.f.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	r.synced()
	return r
}

func (r *ethRig) ledger() *wallet.NonceLedger { return r.sink.ledger.Load() }

// synced waits until the watcher has fed the ledger the devnet's head.
func (r *ethRig) synced() {
	r.t.Helper()
	want := strings.ToLower(r.dev.Head().Hash().Hex())
	require.Eventually(r.t, func() bool { return r.f.Status().Hash == want }, 30*time.Second, 10*time.Millisecond,
		"the watcher did not reach the head %s: %+v", want, r.f.Status())
}

// tokenBalance is balanceOf(a) of the devnet token, read by eth_call.
func (r *ethRig) tokenBalance(a common.Address) *big.Int {
	r.t.Helper()
	data := append(crypto.Keccak256([]byte("balanceOf(address)"))[:4:4], common.LeftPadBytes(a.Bytes(), 32)...)
	out, err := r.dev.Client().CallContract(r.ctx, ethereum.CallMsg{To: &r.tr.Token, Data: data}, nil)
	require.NoError(r.t, err)
	require.Len(r.t, out, 32)
	return new(big.Int).SetBytes(out)
}

func (r *ethRig) balance(a common.Address) *big.Int {
	r.t.Helper()
	b, err := r.dev.Client().BalanceAt(r.ctx, a, nil)
	require.NoError(r.t, err)
	return b
}

func (r *ethRig) baseFee() *big.Int {
	r.t.Helper()
	h, err := r.dev.Client().HeaderByNumber(r.ctx, nil)
	require.NoError(r.t, err)
	require.NotNil(r.t, h.BaseFee)
	return h.BaseFee
}

func (r *ethRig) pendingNonce() uint64 {
	r.t.Helper()
	n, err := r.dev.Client().PendingNonceAt(r.ctx, r.addr)
	require.NoError(r.t, err)
	return n
}

// estimate is the node's eth_estimateGas of in's transfer from w.
func (r *ethRig) estimate(w wallet.ETHWallet, in intent.Intent) uint64 {
	r.t.Helper()
	call, err := w.Call(in)
	require.NoError(r.t, err)
	gas, err := r.dev.Client().EstimateGas(r.ctx, ethereum.CallMsg{From: call.From, To: &call.To, Value: call.Value, Data: call.Data})
	require.NoError(r.t, err)
	return gas
}

// withdrawal makes the signed transaction of in the way the signer
// does: a nonce from the ledger, BuildETH with the node's gas estimate
// at its base fee, the
// second risk layer's CheckETH, the devkey signature of SigningHash,
// FinalizeETH; the hash is recorded in the ledger.
func (r *ethRig) withdrawal(w wallet.ETHWallet, in intent.Intent, nodeNonce uint64) *types.Transaction {
	r.t.Helper()
	l := r.ledger()
	n, err := l.Assign(r.addr, in.ID, nodeNonce)
	require.NoError(r.t, err)
	est := r.estimate(w, in)
	b, err := wallet.BuildETH(w, in, n, est, r.baseFee(), r.tip)
	require.NoError(r.t, err)
	require.GreaterOrEqual(r.t, b.Tx.Gas(), est)
	checked, err := txcheck.CheckETH(b.Payload, in, r.policy)
	require.NoError(r.t, err)
	require.Equal(r.t, b.SigningHash, checked.SigningHash)
	require.Equal(r.t, n, checked.Nonce)
	sig, err := r.signer.Sign(r.ctx, sdk.SignRequest{KeyID: w.Key.KeyID, Digest: b.SigningHash,
		Context: sdk.SignContext{Chain: "eth", Network: ethNetwork, TxID: hex.EncodeToString(b.SigningHash[:]),
			Authorizations: []sdk.Authorization{{Withdrawal: in.ID}}}})
	require.NoError(r.t, err)
	tx, err := b.FinalizeETH(sig)
	require.NoError(r.t, err)
	from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(devnet.ChainID)), tx)
	require.NoError(r.t, err)
	require.Equal(r.t, r.addr, from, "go-ethereum recovers the wallet")
	require.Equal(r.t, n, tx.Nonce())
	require.NoError(r.t, l.SetTxHash(r.addr, n, tx.Hash().Hex()))
	r.signed[strings.ToLower(tx.Hash().Hex())] = tx
	return tx
}

func (r *ethRig) send(tx *types.Transaction) {
	r.t.Helper()
	require.NoError(r.t, r.dev.Client().SendTransaction(r.ctx, tx))
}

// mined requires tx's receipt on the canonical chain with status 1.
func (r *ethRig) mined(tx *types.Transaction) *types.Receipt {
	r.t.Helper()
	// The node indexes a block's transactions on its own goroutine: a
	// receipt may be "not found" for a moment after the block.
	var rc *types.Receipt
	var err error
	// And the pool takes a transaction in on its own goroutine too: one
	// sent just before a block may only make the next.
	for i, deadline := 0, time.Now().Add(10*time.Second); ; i++ {
		if rc, err = r.dev.Client().TransactionReceipt(r.ctx, tx.Hash()); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
		if i%10 == 9 {
			r.dev.Commit()
		}
	}
	require.NoError(r.t, err, "no receipt of %s", tx.Hash())
	require.Equal(r.t, types.ReceiptStatusSuccessful, rc.Status)
	return rc
}

// requireMined requires the ledger to hold tx's nonce as mined by tx in
// block.
func (r *ethRig) requireMined(l *wallet.NonceLedger, tx *types.Transaction, block common.Hash) {
	r.t.Helper()
	st, e := l.Status(r.addr, tx.Nonce())
	require.Equal(r.t, wallet.NonceMined, st)
	require.Equal(r.t, strings.ToLower(tx.Hash().Hex()), e.MinedTx)
	require.Equal(r.t, strings.ToLower(block.Hex()), e.Block)
}

func ethIntent(id string, asset string, dst common.Address, amount int64) intent.Intent {
	return intent.Intent{ID: id, Chain: "eth", Network: ethNetwork, Asset: asset, Amount: big.NewInt(amount).String(),
		Destination: strings.ToLower(dst.Hex())}
}

func newAddress(seed string) common.Address {
	return common.BytesToAddress(crypto.Keccak256([]byte("cordon-wallet-dst/" + seed))[12:])
}

// TestETHAgainstDevnet pays a native and an ERC-20 withdrawal from a
// devkey hot wallet on the go-ethereum devnet, each built, checked by
// the second risk layer, signed, sent over JSON-RPC and mined; then
// takes a withdrawal through a reorganization that drops it, and the
// ledger through a restart.
func TestETHAgainstDevnet(t *testing.T) {
	r := newETHRig(t)
	ctx := r.ctx
	dst := newAddress("native")

	// A native withdrawal.
	before := r.balance(dst)
	require.Zero(t, before.Sign())
	amount := int64(1_234_567_890_123_456_789)
	in := ethIntent("wd_eth_1", intent.Native, dst, amount)
	tx1 := r.withdrawal(r.w, in, r.pendingNonce())
	require.Equal(t, big.NewInt(amount), tx1.Value())
	r.send(tx1)
	r.dev.Commit()
	rc := r.mined(tx1)
	require.Equal(t, big.NewInt(amount), new(big.Int).Sub(r.balance(dst), before), "the destination got exactly the amount")
	r.synced()
	r.requireMined(r.ledger(), tx1, rc.BlockHash)

	// An ERC-20 withdrawal of the devnet token.
	tokenDst := newAddress("token")
	token := strings.ToLower(r.tr.Token.Hex())
	hotTokens := r.tokenBalance(r.addr)
	in2 := ethIntent("wd_eth_2", token, tokenDst, 654_321)
	tx2 := r.withdrawal(r.w, in2, r.pendingNonce())
	require.Equal(t, tx1.Nonce()+1, tx2.Nonce())
	require.Zero(t, tx2.Value().Sign(), "a token transfer carries no ETH")
	require.Equal(t, r.tr.Token, *tx2.To())
	r.send(tx2)
	r.dev.Commit()
	rc = r.mined(tx2)
	require.Len(t, rc.Logs, 1, "one Transfer event")
	require.Equal(t, big.NewInt(654_321), r.tokenBalance(tokenDst), "the destination got exactly the amount")
	require.Equal(t, new(big.Int).Sub(hotTokens, big.NewInt(654_321)), r.tokenBalance(r.addr))
	require.Zero(t, r.balance(tokenDst).Sign(), "and no ETH")
	r.synced()
	r.requireMined(r.ledger(), tx2, rc.BlockHash)

	// A cap between baseFee+tip and 2×baseFee+tip lowers the max fee to
	// the cap, and the chain still takes the transaction.
	base := r.baseFee()
	tight := r.w
	tight.MaxFeePerGas = new(big.Int).Add(base, new(big.Int).Add(r.tip, big.NewInt(1))).String()
	tx3 := r.withdrawal(tight, ethIntent("wd_eth_3", intent.Native, dst, 1000), r.pendingNonce())
	require.Equal(t, tight.MaxFeePerGas, tx3.GasFeeCap().String())
	r.send(tx3)
	r.dev.Commit()
	r.mined(tx3)

	// A cap below the base fee is refused, not clamped.
	low := r.w
	low.MaxFeePerGas = new(big.Int).Sub(r.baseFee(), big.NewInt(1)).String()
	_, err := wallet.BuildETH(low, ethIntent("wd_eth_low", intent.Native, dst, 1000), r.pendingNonce(), 21_000, r.baseFee(), r.tip)
	require.ErrorIs(t, err, wallet.ErrFeeCap)
	// So is a tip above the wallet's cap.
	_, err = wallet.BuildETH(r.w, ethIntent("wd_eth_tip", intent.Native, dst, 1000), r.pendingNonce(), 21_000, r.baseFee(), big.NewInt(3*params.GWei))
	require.ErrorIs(t, err, wallet.ErrFeeCap)
	// A token transfer the node estimates above the wallet's gas limit is
	// refused: with a fixed limit below what it costs it would run out of
	// gas on chain, spending the nonce and the fee and paying nobody.
	in3 := ethIntent("wd_eth_gas", token, tokenDst, 1)
	est := r.estimate(r.w, in3)
	short := r.w
	short.GasToken = est - 1
	_, err = wallet.BuildETH(short, in3, r.pendingNonce(), est, r.baseFee(), r.tip)
	require.ErrorIs(t, err, wallet.ErrGasCap)
	r.synced()

	// A withdrawal mined, then reorganized out and dropped from the pool
	// (as a node may do): its nonce goes back to assigned, with its hash.
	before = r.balance(dst)
	tx4 := r.withdrawal(r.w, ethIntent("wd_eth_4", intent.Native, dst, 4444), r.pendingNonce())
	r.send(tx4)
	r.dev.Commit()
	rc4 := r.mined(tx4)
	orphan := rc4.BlockHash
	r.synced()
	r.requireMined(r.ledger(), tx4, orphan)
	head, err := r.dev.Client().BlockNumber(ctx)
	require.NoError(t, err)
	require.NoError(t, r.dev.Reorg(int(head-rc4.BlockNumber.Uint64()+1)))
	// The abandoned block's transaction returns to the pool; drop it.
	require.Eventually(t, func() bool {
		_, pending, err := r.dev.Client().TransactionByHash(ctx, tx4.Hash())
		return err == nil && pending
	}, 10*time.Second, 10*time.Millisecond, "the reorganized transaction did not return to the pool")
	r.dev.Rollback()
	_, _, err = r.dev.Client().TransactionByHash(ctx, tx4.Hash())
	require.ErrorIs(t, err, ethereum.NotFound)
	r.dev.Commit()
	r.dev.Commit()
	r.synced()
	require.NotEqual(t, orphan, r.dev.Head().ParentHash)
	_, err = r.dev.Client().TransactionReceipt(ctx, tx4.Hash())
	require.ErrorIs(t, err, ethereum.NotFound, "tx4 is off the canonical chain")
	require.Equal(t, before, r.balance(dst))
	require.Equal(t, tx4.Nonce(), r.pendingNonce(), "the node would give tx4's nonce again")
	st, e := r.ledger().Status(r.addr, tx4.Nonce())
	require.Equal(t, wallet.NonceAssigned, st)
	require.Equal(t, "wd_eth_4", e.Key)
	require.Empty(t, e.Block)
	pending := r.ledger().Pending(r.addr)
	require.Len(t, pending, 1)
	require.Equal(t, strings.ToLower(tx4.Hash().Hex()), pending[0].TxHash)

	// A restart now keeps the assigned nonce and what to rebroadcast.
	snap, err := r.ledger().Snapshot()
	require.NoError(t, err)
	restarted := wallet.NewNonceLedger(ethNetwork, r.addr)
	require.NoError(t, restarted.Restore(snap))
	require.Equal(t, pending, restarted.Pending(r.addr))

	// The next withdrawal does not get tx4's nonce, although the node
	// offers it: no nonce of one approval serves another.
	tx5 := r.withdrawal(r.w, ethIntent("wd_eth_5", intent.Native, dst, 5555), r.pendingNonce())
	require.Equal(t, tx4.Nonce()+1, tx5.Nonce())
	again, err := r.ledger().Assign(r.addr, "wd_eth_4", r.pendingNonce())
	require.NoError(t, err)
	require.Equal(t, tx4.Nonce(), again, "wd_eth_4 keeps its nonce")
	r.send(tx5)
	r.dev.Commit()
	_, err = r.dev.Client().TransactionReceipt(ctx, tx5.Hash())
	require.ErrorIs(t, err, ethereum.NotFound, "tx5 waits behind the gap tx4 left")
	r.synced()

	// Rebroadcasting what the ledger holds pending closes the gap: the
	// same signed tx4, and tx5 follows in the same block.
	for _, e := range r.ledger().Pending(r.addr) {
		tx, ok := r.signed[e.TxHash]
		require.True(t, ok, "no signed transaction %s", e.TxHash)
		if tx.Hash() == tx5.Hash() {
			continue // still in the node's pool
		}
		r.send(tx)
	}
	r.dev.Commit()
	rc4, rc5 := r.mined(tx4), r.mined(tx5)
	require.Equal(t, big.NewInt(4444+5555), new(big.Int).Sub(r.balance(dst), before), "tx4 paid once")
	r.synced()
	r.requireMined(r.ledger(), tx4, rc4.BlockHash)
	r.requireMined(r.ledger(), tx5, rc5.BlockHash)
	require.Empty(t, r.ledger().Pending(r.addr))
	next, err := r.dev.Client().NonceAt(ctx, r.addr, nil)
	require.NoError(t, err)
	require.Equal(t, tx5.Nonce()+1, next, "no nonce skipped")

	// A restart from the snapshot: the new ledger, fed by the watcher
	// from then on, continues with the next nonce even when its node lags.
	snap, err = r.ledger().Snapshot()
	require.NoError(t, err)
	restarted = wallet.NewNonceLedger(ethNetwork, r.addr)
	require.NoError(t, restarted.Restore(snap))
	r.sink.ledger.Store(restarted)
	r.requireMined(restarted, tx5, rc5.BlockHash)
	n, err := restarted.Assign(r.addr, "wd_eth_5", 0)
	require.NoError(t, err)
	require.Equal(t, tx5.Nonce(), n, "a key keeps its nonce across the restart")
	tx6 := r.withdrawal(r.w, ethIntent("wd_eth_6", intent.Native, dst, 6666), tx1.Nonce())
	require.Equal(t, next, tx6.Nonce(), "a lagging node's nonce does not reuse one")
	// A nonce given and then released (its approval was replaced) goes
	// to the next withdrawal.
	stray, err := restarted.Assign(r.addr, "wd_eth_stray", r.pendingNonce())
	require.NoError(t, err)
	require.Equal(t, next+1, stray)
	require.NoError(t, restarted.Release(r.addr, stray))
	tx7 := r.withdrawal(r.w, ethIntent("wd_eth_7", intent.Native, dst, 7777), r.pendingNonce())
	require.Equal(t, stray, tx7.Nonce())
	r.send(tx6)
	r.send(tx7)
	r.dev.Commit()
	rc6 := r.mined(tx6)
	rc7 := r.mined(tx7)
	r.synced()
	r.requireMined(restarted, tx6, rc6.BlockHash)
	r.requireMined(restarted, tx7, rc7.BlockHash)
	require.Empty(t, restarted.Pending(r.addr))
}
