package vault

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/txcheck"
	"github.com/cordonhq/cordon/signer/wallet"
)

func erc20(to common.Address, amount *big.Int) []byte {
	d := []byte{0xa9, 0x05, 0x9c, 0xbb}
	d = append(d, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(d, common.LeftPadBytes(amount.Bytes(), 32)...)
}

// ethPayload encodes an unsigned EIP-1559 transaction of the wallet as
// the builder would, with tamper applied to its fields first.
func ethPayload(t *testing.T, to common.Address, value *big.Int, data []byte, tamper func(*types.DynamicFeeTx)) []byte {
	d := &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(20e9), Gas: 100_000,
		To: &to, Value: value, Data: data}
	if tamper != nil {
		tamper(d)
	}
	h := types.LatestSignerForChainID(d.ChainID).Hash(types.NewTx(d))
	p, err := unsignedPayload(d)
	require.NoError(t, err)
	require.Equal(t, h[:], keccak(p))
	return p
}

// TestTamperedRequestsRefusedBeforeAnyPlugin is the tampered-transaction
// suite: each case is what a compromised gate or builder, or a forged
// record, would ask; each is refused with its reason before any plugin
// is called, and those that mean someone lied trip the breaker.
func TestTamperedRequestsRefusedBeforeAnyPlugin(t *testing.T) {
	type tc struct {
		name string
		req  func(f *fixture) *Request
		code string
	}
	dst := func(t *testing.T) string { return btcAddr(t, "customer") }
	cases := []tc{
		{"destination swapped", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, btcAddr(f.t, "thief"), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeDestination},
		{"amount changed", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 31_000_000), wire.NewTxOut(68_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeAmount},
		{"extra output to a stranger", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), pay(f.t, btcAddr(f.t, "stranger"), 1_000_000), wire.NewTxOut(68_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeExtraOutput},
		{"change to a script that is not ours, claimed as change", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), pay(f.t, btcAddr(f.t, "stranger"), 69_998_000))
			b.pkt.Outputs[1].WitnessScript = f.btc.WitnessScript
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeChange},
		{"fee above the cap", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_000_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeFee},
		{"input amount lied about in the PSBT", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			b.pkt.Inputs[0].WitnessUtxo.Value = 200_000_000
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeInput},
		{"ERC-20 recipient changed inside the calldata, to unchanged", func(f *fixture) *Request {
			in := f.intent("eth", "devnet", strLower(tokenAddr.Hex()), "5000000", strLower(ethDst.Hex()))
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, tokenAddr, new(big.Int), erc20(stranger, big.NewInt(5_000_000)), nil))
		}, txcheck.CodeDestination},
		{"non-zero value on a token call", func(f *fixture) *Request {
			in := f.intent("eth", "devnet", strLower(tokenAddr.Hex()), "5000000", strLower(ethDst.Hex()))
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, tokenAddr, big.NewInt(1), erc20(ethDst, big.NewInt(5_000_000)), nil))
		}, txcheck.CodeAsset},
		{"wrong chain id", func(f *fixture) *Request {
			in := f.intent("eth", "devnet", intent.Native, "1000000000000000000", strLower(ethDst.Hex()))
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, ethDst, big.NewInt(1e18), nil, func(d *types.DynamicFeeTx) { d.ChainID = big.NewInt(1) }))
		}, txcheck.CodeChain},
		{"calldata with trailing bytes", func(f *fixture) *Request {
			in := f.intent("eth", "devnet", strLower(tokenAddr.Hex()), "5000000", strLower(ethDst.Hex()))
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, tokenAddr, new(big.Int), append(erc20(ethDst, big.NewInt(5_000_000)), 0), nil))
		}, txcheck.CodeCall},
		{"a contract call not in the intent (approve to a spender)", func(f *fixture) *Request {
			in := f.intent("eth", "devnet", strLower(tokenAddr.Hex()), "5000000", strLower(ethDst.Hex()))
			data := append([]byte{0x09, 0x5e, 0xa7, 0xb3}, erc20(stranger, big.NewInt(5_000_000))[4:]...)
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, tokenAddr, new(big.Int), data, nil))
		}, txcheck.CodeCall},
		{"a call into a contract on a native withdrawal (delegatecall proxy)", func(f *fixture) *Request {
			in := f.intent("eth", "devnet", intent.Native, "1000000000000000000", strLower(ethDst.Hex()))
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, ethDst, big.NewInt(1e18), []byte{0x5c, 0x60, 0xda, 0x1b}, nil))
		}, txcheck.CodeCall},
		{"an approval replayed from another withdrawal", func(f *fixture) *Request {
			other := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			ws := Withdrawal{Intent: in, Approvals: append(f.approve(in, "alice"), f.approve(other, "dave")...)}
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{ws}, b)
		}, CodeQuorum},
		{"an approval replayed onto a changed intent (same id, other destination)", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			approved := f.approve(in, "alice", "dave")
			in.Destination = btcAddr(f.t, "thief")
			b := f.btcTx(pay(f.t, in.Destination, 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{{Intent: in, Approvals: approved}}, b)
		}, CodeQuorum},
		{"a valid approval set one approver short", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{{Intent: in, Approvals: f.approve(in, "alice")}}, b)
		}, CodeQuorum},
		{"the same approver twice", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{{Intent: in, Approvals: append(f.approve(in, "alice"), f.approve(in, "alice")...)}}, b)
		}, CodeQuorum},
		{"an approval signed by a key the signer does not hold for the approver", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			as := f.approve(in, "alice", "dave")
			as[1].Sign(f.approvers["erin"]) // dave's approval, erin's key: a forgery
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{{Intent: in, Approvals: as}}, b)
		}, CodeQuorum},
		{"an intent decided under another policy", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			in.Policy = "0000000000000000000000000000000000000000000000000000000000000000"
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, CodePolicy},
		{"approvals void (older than the rule's expiry)", func(f *fixture) *Request {
			in := f.intent("btc", "regtest", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			r := f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
			f.now = f.now.Add(3 * time.Hour)
			return r
		}, CodeExpired},
		{"a destination on the signer's blocklist", func(f *fixture) *Request {
			r, _ := f.goodBTC("r", 30_000_000, btcAddr(f.t, "sanctioned"))
			f.block[btcAddr(f.t, "sanctioned")] = true
			return r
		}, CodeBlocklist},
		{"above the limit per withdrawal", func(f *fixture) *Request {
			r, _ := f.goodBTC("r", 60_000_000, dst(f.t))
			return r
		}, CodeLimit},
		{"an asset without a limit", func(f *fixture) *Request {
			other := strLower(common.HexToAddress("0x3333333333333333333333333333333333333333").Hex())
			in := f.intent("eth", "devnet", other, "5", strLower(ethDst.Hex()))
			return f.ethRequest("r", f.withdrawal(in), ethPayload(f.t, common.HexToAddress(other), new(big.Int), erc20(ethDst, big.NewInt(5)), nil))
		}, CodeLimit},
		{"a wallet the signer does not hold", func(f *fixture) *Request {
			r, _ := f.goodBTC("r", 30_000_000, dst(f.t))
			r.Wallet = "cold"
			return r
		}, CodeWallet},
		{"an intent of another network than the request", func(f *fixture) *Request {
			in := f.intent("btc", "testnet3", intent.Native, "30000000", dst(f.t))
			b := f.btcTx(pay(f.t, dst(f.t), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
			return f.btcRequest("r", []Withdrawal{f.withdrawal(in)}, b)
		}, txcheck.CodeChain},
		{"bytes that are not a PSBT", func(f *fixture) *Request {
			r, _ := f.goodBTC("r", 30_000_000, dst(f.t))
			r.Unsigned = append(r.Unsigned, 0)
			return r
		}, txcheck.CodeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			req := c.req(f)
			d := f.v.Admit(req, f.now)
			require.Equal(t, StatusRefused, d.Entry.Status)
			require.Equal(t, c.code, d.Entry.Code, d.Entry.Reason)
			require.NotEmpty(t, d.Entry.Reason)
			require.Zero(t, f.calls(), "a plugin was called")
			require.Equal(t, tripping(c.code), d.Trip != nil, "trip")
			require.Empty(t, f.v.claims, "a refused request claims nothing")
			if d.Trip != nil {
				// Nothing more is signed on the chain: a valid request is
				// refused by the breaker.
				good, _ := f.goodBTC("r2", 10_000_000, dst(t))
				if req.Chain == "eth" {
					in := f.intent("eth", "devnet", intent.Native, "1000000000000000000", strLower(ethDst.Hex()))
					good = f.ethRequest("r2", f.withdrawal(in), ethPayload(t, ethDst, big.NewInt(1e18), nil, nil))
				}
				d2 := f.v.Admit(good, f.now)
				require.Equal(t, CodeBreaker, d2.Entry.Code, d2.Entry.Reason)
			}
		})
	}
}

func TestSignBTCMultisigTwoOfThree(t *testing.T) {
	f := newFixture(t)
	req, b := f.goodBTC("r1", 30_000_000, btcAddr(t, "customer"))
	d := f.v.Admit(req, f.now)
	require.Equal(t, StatusSigning, d.Entry.Status, d.Entry.Reason)
	require.True(t, d.New)
	require.Zero(t, f.calls(), "admitting signs nothing")
	f.plugins["p2"].refuse.Store(true) // one of three refuses: the other two suffice
	require.NoError(t, f.v.Sign(context.Background(), d.Entry, f.now))
	require.Equal(t, StatusSigned, d.Entry.Status, d.Entry.Reason)
	tx := wire.NewMsgTx(2)
	require.NoError(t, tx.Deserialize(bytesReader(d.Entry.Raw)))
	require.Equal(t, b.tx.TxHash().String(), d.Entry.TxID)
	// btcd's script engine, run here on the raw bytes the vault returned.
	fetch := txscript.NewCannedPrevOutputFetcher(b.prev.TxOut[0].PkScript, b.prev.TxOut[0].Value)
	vm, err := txscript.NewEngine(b.prev.TxOut[0].PkScript, tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(tx, fetch), b.prev.TxOut[0].Value, fetch)
	require.NoError(t, err)
	require.NoError(t, vm.Execute())
	// A re-delivery of the request is the same entry: not signed again.
	again := f.v.Admit(req, f.now)
	require.False(t, again.New)
	require.Same(t, d.Entry, again.Entry)
}

func TestSignBTCOneSignerIsNotEnough(t *testing.T) {
	f := newFixture(t)
	req, _ := f.goodBTC("r1", 30_000_000, btcAddr(t, "customer"))
	d := f.v.Admit(req, f.now)
	require.Equal(t, StatusSigning, d.Entry.Status, d.Entry.Reason)
	f.plugins["p1"].refuse.Store(true)
	f.plugins["p3"].refuse.Store(true)
	require.NoError(t, f.v.Sign(context.Background(), d.Entry, f.now))
	require.Equal(t, StatusFailed, d.Entry.Status)
	require.Contains(t, d.Entry.Reason, "1 of the 2 signatures")
	require.Empty(t, d.Entry.Raw)
	// The withdrawal stays claimed: another transaction for it is refused.
	other, _ := f.goodBTC("r2", 30_000_000, btcAddr(t, "customer"))
	other.Withdrawals = req.Withdrawals
	require.Equal(t, CodeDuplicate, f.v.Admit(other, f.now).Entry.Code)
}

func TestSignRetriedWhenAPluginIsDown(t *testing.T) {
	f := newFixture(t)
	req, _ := f.goodBTC("r1", 30_000_000, btcAddr(t, "customer"))
	d := f.v.Admit(req, f.now)
	f.plugins["p1"].down.Store(true)
	f.plugins["p2"].down.Store(true)
	err := f.v.Sign(context.Background(), d.Entry, f.now)
	require.ErrorIs(t, err, ErrRetry)
	require.Equal(t, StatusSigning, d.Entry.Status)
	require.Len(t, f.v.Unfinished(), 1)
	f.plugins["p1"].down.Store(false)
	require.NoError(t, f.v.Sign(context.Background(), d.Entry, f.now))
	require.Equal(t, StatusSigned, d.Entry.Status)
	require.Empty(t, f.v.Unfinished())
}

func TestSignETH(t *testing.T) {
	for _, tc := range []struct {
		name  string
		asset string
		to    common.Address
		value *big.Int
		data  []byte
		amt   string
	}{
		{"native", intent.Native, ethDst, big.NewInt(1e18), nil, "1000000000000000000"},
		{"erc-20", strLower(tokenAddr.Hex()), tokenAddr, new(big.Int), erc20(ethDst, big.NewInt(5_000_000)), "5000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			in := f.intent("eth", "devnet", tc.asset, tc.amt, strLower(ethDst.Hex()))
			req := f.ethRequest("r1", f.withdrawal(in), ethPayload(t, tc.to, tc.value, tc.data, nil))
			d := f.v.Admit(req, f.now)
			require.Equal(t, StatusSigning, d.Entry.Status, d.Entry.Reason)
			require.NoError(t, f.v.Sign(context.Background(), d.Entry, f.now))
			require.Equal(t, StatusSigned, d.Entry.Status, d.Entry.Reason)
			var tx types.Transaction
			require.NoError(t, tx.UnmarshalBinary(d.Entry.Raw))
			from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), &tx)
			require.NoError(t, err)
			want, err := f.eth.Address()
			require.NoError(t, err)
			require.Equal(t, want, from, "go-ethereum recovers the wallet")
			require.Equal(t, tc.to, *tx.To())
			require.Equal(t, tc.value, tx.Value())
			require.Equal(t, tx.Hash().Hex(), d.Entry.TxID)
		})
	}
}

func TestWithdrawalSignedInOneTransactionOnly(t *testing.T) {
	f := newFixture(t)
	req, _ := f.goodBTC("r1", 30_000_000, btcAddr(t, "customer"))
	require.Equal(t, StatusSigning, f.v.Admit(req, f.now).Entry.Status)
	// The same withdrawal in another transaction (a second builder, a
	// replayed request with a new id): refused, and the breaker trips.
	b := f.btcTx(pay(t, btcAddr(t, "customer"), 30_000_000), wire.NewTxOut(69_997_000, f.btc.PkScript))
	second := f.btcRequest("r2", req.Withdrawals, b)
	d := f.v.Admit(second, f.now)
	require.Equal(t, CodeDuplicate, d.Entry.Code, d.Entry.Reason)
	require.NotNil(t, d.Trip)
	// The same request id with other bytes: refused too.
	third := f.btcRequest("r1", req.Withdrawals, b)
	d = f.v.Admit(third, f.now)
	require.Equal(t, CodeDuplicate, d.Entry.Code)
	require.False(t, d.New, "the first entry of r1 stays")
	e, _ := f.v.Entry("r1")
	require.Equal(t, StatusSigning, e.Status)
}

func TestDailyLimits(t *testing.T) {
	f := newFixture(t)
	// 120M per day, 80M per destination per day, 50M per withdrawal.
	a, c := btcAddr(t, "a"), btcAddr(t, "c")
	for i, s := range []struct {
		amount int64
		dst    string
		ok     bool
	}{{40_000_000, a, true}, {40_000_000, a, true}, {10_000_000, a, false}, {40_000_000, c, true}, {30_000_000, c, false}} {
		req, _ := f.goodBTC("r"+string(rune('0'+i)), s.amount, s.dst)
		d := f.v.Admit(req, f.now)
		if s.ok {
			require.Equal(t, StatusSigning, d.Entry.Status, "step %d: %s", i, d.Entry.Reason)
		} else {
			require.Equal(t, CodeLimit, d.Entry.Code, "step %d", i)
			require.Nil(t, d.Trip)
		}
	}
	// A day later the window has moved on.
	f.now = f.now.Add(25 * time.Hour)
	req, _ := f.goodBTC("r9", 40_000_000, a)
	require.Equal(t, StatusSigning, f.v.Admit(req, f.now).Entry.Status)
}

func TestBreakerResetNeedsTheQuorum(t *testing.T) {
	f := newFixture(t)
	in := f.intent("btc", "regtest", intent.Native, "30000000", btcAddr(t, "customer"))
	b := f.btcTx(pay(t, btcAddr(t, "thief"), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
	d := f.v.Admit(f.btcRequest("r1", []Withdrawal{f.withdrawal(in)}, b), f.now)
	require.NotNil(t, d.Trip)
	tr := d.Trip
	reset := func(who string, subject string) intent.Approval {
		a := intent.Approval{Withdrawal: subject, Intent: tr.Hash(), Approver: who, Decision: intent.Approve, Signed: f.now}
		a.Sign(f.approvers[who])
		return a
	}
	// Finance may not reset; an approval of another subject does not count.
	_, _, err := f.v.Reset(tr.ID, reset("dave", tr.Subject()))
	require.Error(t, err)
	_, _, err = f.v.Reset(tr.ID, reset("alice", "signer-breaker/st_other"))
	require.ErrorIs(t, err, intent.ErrWrongIntent)
	_, done, err := f.v.Reset(tr.ID, reset("alice", tr.Subject()))
	require.NoError(t, err)
	require.False(t, done)
	_, done, err = f.v.Reset(tr.ID, reset("alice", tr.Subject()))
	require.NoError(t, err)
	require.False(t, done, "one approver twice is one")
	good, _ := f.goodBTC("r2", 10_000_000, btcAddr(t, "customer"))
	require.Equal(t, CodeBreaker, f.v.Admit(good, f.now).Entry.Code)
	_, done, err = f.v.Reset(tr.ID, reset("bob", tr.Subject()))
	require.NoError(t, err)
	require.True(t, done)
	good, _ = f.goodBTC("r3", 10_000_000, btcAddr(t, "customer"))
	require.Equal(t, StatusSigning, f.v.Admit(good, f.now).Entry.Status)
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	f := newFixture(t)
	cfg := f.cfg
	cfg.Limits = append(cfg.Limits, Limit{Chain: "btc", Network: "regtest", Asset: "native", PerDay: "-1"})
	cfg.Wallets.ETH = []wallet.ETHWallet{f.cfg.Wallets.ETH[0]}
	cfg.Wallets.ETH[0].Key.Plugin = "nope"
	_, err := New(cfg, map[string]Signer{"p1": f.plugins["p1"], "p2": f.plugins["p2"], "p3": f.plugins["p3"]}, f.block, nil)
	require.ErrorContains(t, err, "signer.limits[3].per_day")
	require.ErrorContains(t, err, "signer.limits[3]: a second limit")
	require.ErrorContains(t, err, `signer.wallets.eth[0].key.plugin: "nope"`)
	_, err = New(f.cfg, map[string]Signer{"p1": f.plugins["p1"], "p2": f.plugins["p2"], "p3": f.plugins["p3"]}, nil, nil)
	require.ErrorContains(t, err, "signer.blocklist")
}
