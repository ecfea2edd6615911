package vault

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/wallet"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// plugin is a dev key plugin in process, counting its signatures, that
// can be made to refuse or to fail as a dead plugin does.
type plugin struct {
	s      *keys.Signer
	calls  atomic.Int32
	refuse atomic.Bool
	down   atomic.Bool
}

func (p *plugin) Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error) {
	p.calls.Add(1)
	switch {
	case p.refuse.Load():
		return sdk.Signature{}, sdk.ErrRefused
	case p.down.Load():
		return sdk.Signature{}, context.DeadlineExceeded
	}
	return p.s.Sign(ctx, req)
}

type blocklist map[string]bool

func (b blocklist) Hits(_ chain.Chain, _, addr string) []chain.Hit {
	if b[addr] {
		return []chain.Hit{{Address: addr, Indicator: "ofac-1", Category: "sanctions", Source: "ofac"}}
	}
	return nil
}

// fixture is a vault with five approvers (alice, bob, carol in
// security; dave, erin in finance), the default policy, a 2-of-3 P2WSH
// Bitcoin wallet on regtest across plugins p1, p2 and p3, and an
// Ethereum wallet on the devnet whose key is in p1.
type fixture struct {
	t         *testing.T
	v         *Vault
	cfg       Config
	plugins   map[string]*plugin
	approvers map[string]ed25519.PrivateKey
	block     blocklist
	btc       *wallet.BTCScript
	eth       *wallet.ETHWallet
	now       time.Time
	n         int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, plugins: map[string]*plugin{}, approvers: map[string]ed25519.PrivateKey{}, block: blocklist{}, now: t0}
	var list []intent.Approver
	for _, a := range []struct{ name, group string }{{"alice", "security"}, {"bob", "security"}, {"carol", "security"}, {"dave", "finance"}, {"erin", "finance"}} {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, "vault-test/"+a.name)
		k := ed25519.NewKeyFromSeed(seed)
		f.approvers[a.name] = k
		list = append(list, intent.Approver{Name: a.name, Groups: []string{a.group}, Key: base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	dir := t.TempDir()
	signers := map[string]Signer{}
	var refs []wallet.KeyRef
	for _, name := range []string{"p1", "p2", "p3"} {
		path := filepath.Join(dir, name+".json")
		ids := []string{"hot"}
		if name == "p1" {
			ids = append(ids, "eth")
		}
		require.NoError(t, keys.Generate(path, ids))
		s, err := keys.Load(path)
		require.NoError(t, err)
		p := &plugin{s: s}
		f.plugins[name] = p
		signers[name] = p
		pk, err := s.PublicKey(context.Background(), "hot")
		require.NoError(t, err)
		refs = append(refs, wallet.KeyRef{Plugin: name, KeyID: "hot", PublicKey: hex.EncodeToString(pk)})
	}
	ethPK, err := f.plugins["p1"].s.PublicKey(context.Background(), "eth")
	require.NoError(t, err)
	f.cfg = Config{
		Approvers: list,
		Wallets: wallet.Config{
			BTC: []wallet.BTCWallet{{Name: "btc-hot", Network: "regtest", Kind: wallet.KindP2WSH, Keys: refs, MaxFeeRate: 50, MaxFee: 100_000}},
			ETH: []wallet.ETHWallet{{Name: "eth-hot", Network: "devnet", ChainID: 1337, Key: wallet.KeyRef{Plugin: "p1", KeyID: "eth", PublicKey: hex.EncodeToString(ethPK)},
				MaxFeePerGas: "100000000000", MaxPriorityFeePerGas: "2000000000"}},
		},
		Limits: []Limit{
			{Chain: "btc", Network: "regtest", Asset: intent.Native, PerWithdrawal: "50000000", PerDay: "120000000", PerDestinationDay: "80000000"},
			{Chain: "eth", Network: "devnet", Asset: intent.Native, PerWithdrawal: "5000000000000000000"},
			{Chain: "eth", Network: "devnet", Asset: strLower(tokenAddr.Hex()), PerWithdrawal: "1000000000"},
		},
	}
	f.v, err = New(f.cfg, signers, f.block, nil)
	require.NoError(t, err)
	f.btc = f.v.btc["btc-hot"].script
	f.eth = f.v.eth["eth-hot"]
	return f
}

func strLower(s string) string { return string(bytes.ToLower([]byte(s))) }

var (
	tokenAddr = common.HexToAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3")
	ethDst    = common.HexToAddress("0x1111111111111111111111111111111111111111")
	stranger  = common.HexToAddress("0x2222222222222222222222222222222222222222")
)

// btcAddr is a regtest P2WPKH address of seed.
func btcAddr(t *testing.T, seed string) string {
	h := btcutil.Hash160([]byte(seed))
	a, err := btcutil.NewAddressWitnessPubKeyHash(h, &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	return a.EncodeAddress()
}

// intent is a withdrawal under rule below-1m (2 approvers within 15
// minutes, void after 2 hours), requested 10 minutes before now.
func (f *fixture) intent(c, network, asset, amount, dst string) intent.Intent {
	f.n++
	return intent.Intent{ID: "wd_" + string(rune('a'+f.n)) + "1", Request: "req", Requester: "exchange", Account: "acct-1", Chain: c, Network: network,
		Asset: asset, Amount: amount, Destination: dst, Rule: "below-1m", Policy: f.v.PolicyHash(), Requested: f.now.Add(-10 * time.Minute)}
}

// approve has the approvers sign in's approval 5 minutes before now.
func (f *fixture) approve(in intent.Intent, who ...string) []intent.Approval {
	h, err := in.Hash()
	require.NoError(f.t, err)
	var out []intent.Approval
	for _, name := range who {
		a := intent.Approval{Withdrawal: in.ID, Intent: h, Approver: name, Decision: intent.Approve, Signed: f.now.Add(-5 * time.Minute)}
		a.Sign(f.approvers[name])
		out = append(out, a)
	}
	return out
}

func (f *fixture) withdrawal(in intent.Intent) Withdrawal {
	return Withdrawal{Intent: in, Approvals: f.approve(in, "alice", "dave")}
}

// btcTx is an unsigned transaction of the wallet: one input of 1 BTC
// (from a previous transaction paying the wallet), outputs as given.
type btcTx struct {
	prev *wire.MsgTx
	tx   *wire.MsgTx
	pkt  *psbt.Packet
}

func (f *fixture) btcTx(outs ...*wire.TxOut) *btcTx {
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}, nil, nil))
	prev.AddTxOut(wire.NewTxOut(100_000_000, f.btc.PkScript))
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev.TxHash(), Index: 0}, nil, nil))
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	pkt, err := psbt.NewFromUnsignedTx(tx)
	require.NoError(f.t, err)
	pkt.Inputs[0].WitnessUtxo = wire.NewTxOut(prev.TxOut[0].Value, prev.TxOut[0].PkScript)
	pkt.Inputs[0].NonWitnessUtxo = prev
	pkt.Inputs[0].WitnessScript = f.btc.WitnessScript
	return &btcTx{prev: prev, tx: tx, pkt: pkt}
}

func (b *btcTx) bytes(t *testing.T) []byte {
	var buf bytes.Buffer
	require.NoError(t, b.pkt.Serialize(&buf))
	return buf.Bytes()
}

func pay(t *testing.T, addr string, sat int64) *wire.TxOut {
	a, err := btcutil.DecodeAddress(addr, &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	s, err := txscript.PayToAddrScript(a)
	require.NoError(t, err)
	return wire.NewTxOut(sat, s)
}

// btcRequest is a request paying in (native, regtest) with change.
func (f *fixture) btcRequest(id string, ws []Withdrawal, b *btcTx) *Request {
	return &Request{V: 1, ID: id, Chain: "btc", Network: "regtest", Wallet: "btc-hot", Unsigned: b.bytes(f.t), Withdrawals: ws, Created: f.now}
}

// goodBTC is a valid request of one withdrawal of amount to dst.
func (f *fixture) goodBTC(id string, amount int64, dst string) (*Request, *btcTx) {
	in := f.intent("btc", "regtest", intent.Native, big.NewInt(amount).String(), dst)
	b := f.btcTx(pay(f.t, dst, amount), wire.NewTxOut(100_000_000-amount-2_000, f.btc.PkScript))
	return f.btcRequest(id, []Withdrawal{f.withdrawal(in)}, b), b
}

func (f *fixture) ethRequest(id string, w Withdrawal, payload []byte) *Request {
	return &Request{V: 1, ID: id, Chain: "eth", Network: "devnet", Wallet: "eth-hot", Unsigned: payload, Withdrawals: []Withdrawal{w}, Created: f.now}
}

func (f *fixture) calls() int {
	n := 0
	for _, p := range f.plugins {
		n += int(p.calls.Load())
	}
	return n
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// unsignedPayload is 0x02 || rlp of the nine unsigned fields.
func unsignedPayload(d *types.DynamicFeeTx) ([]byte, error) {
	enc, err := rlp.EncodeToBytes([]any{d.ChainID, d.Nonce, d.GasTipCap, d.GasFeeCap, d.Gas, *d.To, d.Value, d.Data, types.AccessList{}})
	if err != nil {
		return nil, err
	}
	return append([]byte{types.DynamicFeeTxType}, enc...), nil
}

func keccak(b []byte) []byte { return crypto.Keccak256(b) }
