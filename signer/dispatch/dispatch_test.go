package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/txcheck"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
)

// fakeETH is a node that takes every transaction and mines none: what
// a node that drops transactions looks like from here.
type fakeETH struct {
	mu   sync.Mutex
	sent []common.Hash
	down bool
}

func (n *fakeETH) PendingNonce(context.Context, common.Address) (uint64, error) { return 0, nil }
func (n *fakeETH) EstimateGas(context.Context, ethereum.CallMsg) (uint64, error) {
	return 21_000, nil
}
func (n *fakeETH) Fees(context.Context) (*big.Int, *big.Int, error) {
	return big.NewInt(1e9), big.NewInt(1e9), nil
}
func (n *fakeETH) Broadcast(_ context.Context, tx *types.Transaction) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return errors.New("connection refused")
	}
	n.sent = append(n.sent, tx.Hash())
	return nil
}

func (n *fakeETH) count() int { n.mu.Lock(); defer n.mu.Unlock(); return len(n.sent) }

type unit struct {
	*rig
	d     *Dispatcher
	node  *fakeETH
	clock *clock.Manual
	w     wallet.ETHWallet
}

func newUnit(t *testing.T) *unit {
	r := newRig(t)
	r.cfg = Config{Wallets: wallet.Config{ETH: []wallet.ETHWallet{{Name: "eth-hot", Network: "devnet", ChainID: 1337,
		Key: r.key("p1", "eth"), MaxFeePerGas: "500000000000", MaxPriorityFeePerGas: "5000000000"}}},
		Confirmations: map[string]int{"eth/devnet": 2}, Rebroadcast: time.Minute}
	var p config.Problems
	r.cfg.Validate(&p, "dispatch")
	require.NoError(t, p.Err())
	r.startGate("eth/devnet")
	u := &unit{rig: r, node: &fakeETH{}, clock: clock.NewManual(time.Now()), w: r.cfg.Wallets.ETH[0]}
	d, err := New(Options{Config: r.cfg, Gate: r.gate, ETH: map[string]ETHNode{"devnet": u.node}, Clock: u.clock, Log: testLog(t)})
	require.NoError(t, err)
	d.load(nil)
	d.caught = true
	require.NoError(t, d.reserve())
	u.d = d
	return u
}

// request is the last signing request written.
func (u *unit) request() vault.Request {
	var q vault.Request
	require.NoError(u.t, json.Unmarshal(u.gate.sent[len(u.gate.sent)-1].Value, &q))
	return q
}

// sign is what an honest signer returns for q: its own check, the
// wallet's rebuild, the plugin's signature.
func (u *unit) sign(q vault.Request) vault.Result {
	pol, err := u.w.CheckPolicy()
	require.NoError(u.t, err)
	checked, err := txcheck.CheckETH(q.Unsigned, q.Withdrawals[0].Intent, pol)
	require.NoError(u.t, err)
	b, err := u.w.Rebuild(checked)
	require.NoError(u.t, err)
	return u.signBuild(q, b)
}

func (u *unit) signBuild(q vault.Request, b *wallet.ETHBuild) vault.Result {
	sig, err := u.plugins["p1"].Sign(context.Background(), sdk.SignRequest{KeyID: "eth", Digest: b.SigningHash, Context: sdk.SignContext{Chain: "eth", Network: "devnet"}})
	require.NoError(u.t, err)
	tx, err := b.FinalizeETH(sig)
	require.NoError(u.t, err)
	raw, err := tx.MarshalBinary()
	require.NoError(u.t, err)
	return vault.Result{V: 1, ID: q.ID, Status: vault.StatusSigned, Withdrawals: q.IDs(), Chain: "eth", Network: "devnet", TxID: tx.Hash().Hex(), Raw: raw}
}

// A signer that returns another transaction than the one requested —
// signed by the wallet's own key, to a thief — has it refused: never
// broadcast, the withdrawal failed, its nonce given to the next one.
func TestSignedTransactionMustBeTheRequested(t *testing.T) {
	u := newUnit(t)
	ctx := context.Background()
	a := u.withdraw("a", "eth", "devnet", "1000000000000000000", "0x00000000000000000000000000000000c0ffee01")
	require.NoError(t, u.d.step(ctx))
	require.Equal(t, gate.StatusSigning, u.gate.get(a).Status)
	q := u.request()
	thief := q.Withdrawals[0].Intent
	thief.Destination = "0x000000000000000000000000000000000000bad1"
	b, err := wallet.BuildETH(u.w, thief, *u.gate.get(a).Tx.Nonce, 21000, big.NewInt(1e9), big.NewInt(1e9))
	require.NoError(t, err)
	require.NoError(t, u.d.result(ctx, u.signBuild(q, b)))
	w := u.gate.get(a)
	require.Equal(t, gate.StatusFailed, w.Status)
	require.Contains(t, w.Reason, "not the one requested")
	require.Zero(t, u.node.count(), "nothing broadcast")
	require.Contains(t, u.gate.alertTypes(), "withdrawal_signing_failed")
	trips := u.gate.core.Trips()
	require.Len(t, trips, 1, "the chain's breaker is tripped")
	require.Equal(t, "eth", trips[0].Chain)
	require.Contains(t, trips[0].Reason, "other than the one requested")
	// Withdrawals are held until a quorum resets it.
	held := u.withdraw("held", "eth", "devnet", "1000000000000000000", "0x00000000000000000000000000000000c0ffee02")
	require.Equal(t, gate.StatusPaused, u.gate.get(held).Status)
	require.NoError(t, u.d.step(ctx))
	require.Equal(t, gate.StatusPaused, u.gate.get(held).Status, "not handed on while held")
	// Two of security reset it.
	u.gate.mu.Lock()
	for _, who := range []string{"alice", "bob"} {
		a := intent.Approval{Withdrawal: trips[0].Subject(), Intent: trips[0].Hash(), Approver: who, Decision: intent.Approve, Signed: time.Now()}
		a.Sign(u.keys[who])
		_, _, err := u.gate.core.Reset(trips[0].ID, a, time.Now())
		require.NoError(t, err)
	}
	u.gate.core.Tick(time.Now())
	require.NoError(t, u.gate.take(ctx))
	u.gate.mu.Unlock()
	require.Equal(t, gate.StatusApproved, u.gate.get(held).Status)
	require.NoError(t, u.d.step(ctx))
	// The next withdrawal gets the failed one's nonce and goes out.
	require.Equal(t, *w.Tx.Nonce, *u.gate.get(held).Tx.Nonce, "the failed transaction's nonce is given again")
	require.NoError(t, u.d.result(ctx, u.sign(u.request())))
	require.Equal(t, gate.StatusBroadcast, u.gate.get(held).Status)
	require.Equal(t, 1, u.node.count())
	// A result for a request already decided changes nothing.
	require.NoError(t, u.d.result(ctx, vault.Result{V: 1, ID: q.ID, Status: vault.StatusSigned}))
	require.Equal(t, gate.StatusFailed, u.gate.get(a).Status)
}

// A signer's refusal fails the withdrawal with the signer's reason.
func TestSignerRefusalFails(t *testing.T) {
	u := newUnit(t)
	ctx := context.Background()
	a := u.withdraw("a", "eth", "devnet", "1000000000000000000", "0x00000000000000000000000000000000c0ffee01")
	require.NoError(t, u.d.step(ctx))
	q := u.request()
	require.NoError(t, u.d.result(ctx, vault.Result{V: 1, ID: q.ID, Status: vault.StatusRefused, Code: "limit", Reason: "above the per-day limit"}))
	w := u.gate.get(a)
	require.Equal(t, gate.StatusFailed, w.Status)
	require.Contains(t, w.Reason, "limit: above the per-day limit")
}

// A transaction the nodes took and nobody mined is sent again after
// rebroadcast, with an alert; a node that is down leaves it signed and
// tried again; a mined one is confirmed at the depth.
func TestRebroadcastAndConfirm(t *testing.T) {
	u := newUnit(t)
	ctx := context.Background()
	a := u.withdraw("a", "eth", "devnet", "1000000000000000000", "0x00000000000000000000000000000000c0ffee01")
	require.NoError(t, u.d.step(ctx))
	u.node.down = true
	res := u.sign(u.request())
	require.NoError(t, u.d.result(ctx, res))
	require.Equal(t, gate.StatusSigned, u.gate.get(a).Status, "no node took it")
	u.node.down = false
	require.NoError(t, u.d.step(ctx))
	require.Equal(t, gate.StatusBroadcast, u.gate.get(a).Status)
	require.Equal(t, 1, u.node.count())
	require.NoError(t, u.d.step(ctx))
	require.Equal(t, 1, u.node.count(), "not again before rebroadcast")
	u.clock.Advance(61 * time.Second)
	require.NoError(t, u.d.step(ctx))
	require.Equal(t, 2, u.node.count())
	require.Contains(t, u.gate.alertTypes(), "withdrawal_rebroadcast")
	require.Equal(t, 2, u.gate.get(a).Tx.Broadcasts)

	hot, err := u.w.Address()
	require.NoError(t, err)
	ev := func(h uint64) chain.BlockEvent {
		return chain.BlockEvent{Type: chain.BlockAdded, Header: chain.Header{Chain: chain.ETH, Network: "devnet", Height: h,
			Hash: "0xb" + strings.Repeat("0", 62) + string(rune('0'+h)), ParentHash: "0xb" + strings.Repeat("0", 62) + string(rune('0'+h-1))}}
	}
	blk := &chain.Block{Transactions: []chain.Transaction{{Chain: chain.ETH, Network: "devnet", Hash: strings.ToUpper(res.TxID[:2]) + res.TxID[2:],
		From: strings.ToLower(hot.Hex()), Nonce: 0, BlockHash: ev(5).Hash}}}
	require.NoError(t, u.d.block(ctx, chain.Update{Event: ev(5), Block: blk}))
	require.Equal(t, gate.StatusMined, u.gate.get(a).Status)
	require.NoError(t, u.d.block(ctx, chain.Update{Event: ev(6), Block: &chain.Block{}}))
	w := u.gate.get(a)
	require.Equal(t, gate.StatusConfirmed, w.Status, w.Reason)
	require.Equal(t, uint64(5), w.Tx.Height)
}
