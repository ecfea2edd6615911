package txcheck

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

var regtest = &chaincfg.RegressionNetParams

// testKey is a fixed key named name, so every run builds the same PSBTs.
func testKey(name string) *btcec.PrivateKey {
	h := sha256.Sum256([]byte("cordon txcheck test key " + name))
	k, _ := btcec.PrivKeyFromBytes(h[:])
	return k
}

func p2wpkh(tb testing.TB, k *btcec.PrivateKey, net *chaincfg.Params) (btcutil.Address, []byte) {
	tb.Helper()
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), net)
	require.NoError(tb, err)
	s, err := txscript.PayToAddrScript(a)
	require.NoError(tb, err)
	return a, s
}

// multisig2of3 is the witness script of a 2-of-3 of keys and its P2WSH pkScript.
func multisig2of3(tb testing.TB, keys ...*btcec.PrivateKey) (witnessScript, pkScript []byte) {
	tb.Helper()
	require.Len(tb, keys, 3)
	var pubs []*btcutil.AddressPubKey
	for _, k := range keys {
		p, err := btcutil.NewAddressPubKey(k.PubKey().SerializeCompressed(), regtest)
		require.NoError(tb, err)
		pubs = append(pubs, p)
	}
	ws, err := txscript.MultiSigScript(pubs, 2)
	require.NoError(tb, err)
	h := sha256.Sum256(ws)
	a, err := btcutil.NewAddressWitnessScriptHash(h[:], regtest)
	require.NoError(tb, err)
	s, err := txscript.PayToAddrScript(a)
	require.NoError(tb, err)
	return ws, s
}

// btcFixture is a regtest withdrawal batch: two wallet P2WPKH outputs
// (1,000,000 and 700,000 sat) pay alice 600,000 sat (P2WPKH) and bob
// 400,000 sat (P2PKH), with 690,000 sat change to the wallet's change
// key: a fee of 10,000 sat.
type btcFixture struct {
	ownScript, changeScript, msScript, witnessScript, strangerScript []byte
	prev1, prev2                                                     *wire.MsgTx
	pkt                                                              *psbt.Packet
	intents                                                          []intent.Intent
	policy                                                           BTCPolicy
	signKeys                                                         map[string][]*btcec.PrivateKey // pkScript → keys that sign for it
}

func newBTCFixture(tb testing.TB) *btcFixture {
	tb.Helper()
	f := &btcFixture{signKeys: map[string][]*btcec.PrivateKey{}}
	own, change := testKey("own"), testKey("change")
	_, f.ownScript = p2wpkh(tb, own, regtest)
	_, f.changeScript = p2wpkh(tb, change, regtest)
	_, f.strangerScript = p2wpkh(tb, testKey("stranger"), regtest)
	ms := []*btcec.PrivateKey{testKey("ms1"), testKey("ms2"), testKey("ms3")}
	f.witnessScript, f.msScript = multisig2of3(tb, ms...)
	f.signKeys[string(f.ownScript)] = []*btcec.PrivateKey{own}
	f.signKeys[string(f.msScript)] = ms[:2]

	aliceAddr, aliceScript := p2wpkh(tb, testKey("alice"), regtest)
	bobAddr, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(testKey("bob").PubKey().SerializeCompressed()), regtest)
	require.NoError(tb, err)
	bobScript, err := txscript.PayToAddrScript(bobAddr)
	require.NoError(tb, err)

	// The previous transactions: their own inputs are made up (they are
	// never checked), their outputs are what the batch spends.
	f.prev1 = wire.NewMsgTx(2)
	f.prev1.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.HashH([]byte("funding 1"))}, nil, nil))
	f.prev1.AddTxOut(wire.NewTxOut(1_000_000, f.ownScript))
	f.prev1.AddTxOut(wire.NewTxOut(2_000_000, f.msScript))
	f.prev1.AddTxOut(wire.NewTxOut(500_000, f.strangerScript))
	f.prev2 = wire.NewMsgTx(2)
	f.prev2.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.HashH([]byte("funding 2")), Index: 3}, nil, nil))
	f.prev2.AddTxOut(wire.NewTxOut(700_000, f.ownScript))

	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: f.prev1.TxHash(), Index: 0}, nil, nil))
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: f.prev2.TxHash(), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(600_000, aliceScript))
	tx.AddTxOut(wire.NewTxOut(400_000, bobScript))
	tx.AddTxOut(wire.NewTxOut(690_000, f.changeScript))
	f.pkt, err = psbt.NewFromUnsignedTx(tx)
	require.NoError(tb, err)
	f.fillInput(0, f.prev1)
	f.fillInput(1, f.prev2)

	f.intents = []intent.Intent{
		{ID: "wd_alice", Chain: "btc", Network: "regtest", Asset: intent.Native, Amount: "600000", Destination: aliceAddr.EncodeAddress()},
		{ID: "wd_bob", Chain: "btc", Network: "regtest", Asset: intent.Native, Amount: "400000", Destination: bobAddr.EncodeAddress()},
	}
	ownSet := map[string]bool{string(f.ownScript): true, string(f.changeScript): true, string(f.msScript): true}
	f.policy = BTCPolicy{
		Params:     regtest,
		Own:        func(s []byte) bool { return ownSet[string(s)] },
		MaxFee:     20_000,
		MaxFeeRate: 50,
	}
	return f
}

// fillInput sets input i's witness UTXO (a copy) and previous transaction.
func (f *btcFixture) fillInput(i int, prev *wire.MsgTx) {
	out := prev.TxOut[f.pkt.UnsignedTx.TxIn[i].PreviousOutPoint.Index]
	f.pkt.Inputs[i].NonWitnessUtxo = prev
	f.pkt.Inputs[i].WitnessUtxo = wire.NewTxOut(out.Value, bytes.Clone(out.PkScript))
	if bytes.Equal(out.PkScript, f.msScript) {
		f.pkt.Inputs[i].WitnessScript = f.witnessScript
	}
}

func (f *btcFixture) bytes(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, f.pkt.Serialize(&b))
	return b.Bytes()
}

func (f *btcFixture) check(tb testing.TB) (*BTCTx, error) {
	tb.Helper()
	return CheckBTC(f.bytes(tb), f.intents, f.policy)
}

func TestCheckBTCAcceptsBatchWithChange(t *testing.T) {
	f := newBTCFixture(t)
	got, err := f.check(t)
	require.NoError(t, err)
	require.Equal(t, f.pkt.UnsignedTx.TxHash().String(), got.TxID)
	require.Equal(t, int64(10_000), got.Fee)
	require.Equal(t, int64(690_000), got.Change)
	require.Equal(t, 2, got.Inputs)
	require.Equal(t, 3, got.Outputs)
	// Two P2WPKH inputs, P2WPKH + P2PKH + P2WPKH outputs: 188 stripped
	// bytes, 2 + 2×108 witness weight units.
	require.Equal(t, int64((188*4+2+2*108+3)/4), got.VSize)
}

func TestCheckBTCAcceptsMultisigInput(t *testing.T) {
	f := newBTCFixture(t)
	// Spend the 2,000,000 sat P2WSH 2-of-3 output instead of the second
	// P2WPKH one: 1,300,000 sat more change.
	f.pkt.UnsignedTx.TxIn[1].PreviousOutPoint = wire.OutPoint{Hash: f.prev1.TxHash(), Index: 1}
	f.fillInput(1, f.prev1)
	f.pkt.UnsignedTx.TxOut[2].Value = 1_990_000
	got, err := f.check(t)
	require.NoError(t, err)
	require.Equal(t, int64(10_000), got.Fee)
	require.Equal(t, int64(1_990_000), got.Change)
	// 254 weight units for the 2-of-3 witness, 108 for the P2WPKH one.
	require.Equal(t, int64((188*4+2+108+254+3)/4), got.VSize)
}

// TestEstimateVSizeBoundsSignedSize signs the accepted transactions for
// real and holds the estimate to the signed size: never below it, and
// at most a few vbytes (the signatures counted at their largest) above.
func TestEstimateVSizeBoundsSignedSize(t *testing.T) {
	for _, multisig := range []bool{false, true} {
		f := newBTCFixture(t)
		if multisig {
			f.pkt.UnsignedTx.TxIn[1].PreviousOutPoint = wire.OutPoint{Hash: f.prev1.TxHash(), Index: 1}
			f.fillInput(1, f.prev1)
			f.pkt.UnsignedTx.TxOut[2].Value = 1_990_000
		}
		estimate := EstimateVSize(f.pkt)
		signed := f.sign(t)
		actual := int64((signed.SerializeSizeStripped()*3 + signed.SerializeSize() + 3) / 4)
		require.LessOrEqual(t, actual, estimate, "multisig %t", multisig)
		require.LessOrEqual(t, estimate-actual, int64(3), "multisig %t: estimate %d, signed %d", multisig, estimate, actual)
	}
}

// sign signs a copy of the fixture's transaction with the wallet's keys
// and verifies every input's script.
func (f *btcFixture) sign(tb testing.TB) *wire.MsgTx {
	tb.Helper()
	tx := f.pkt.UnsignedTx.Copy()
	prevOuts := map[wire.OutPoint]*wire.TxOut{}
	for i, ti := range tx.TxIn {
		prevOuts[ti.PreviousOutPoint] = f.pkt.Inputs[i].WitnessUtxo
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prevOuts)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, ti := range tx.TxIn {
		utxo := f.pkt.Inputs[i].WitnessUtxo
		keys := f.signKeys[string(utxo.PkScript)]
		if bytes.Equal(utxo.PkScript, f.msScript) {
			w := wire.TxWitness{nil}
			for _, k := range keys {
				sig, err := txscript.RawTxInWitnessSignature(tx, hashes, i, utxo.Value, f.witnessScript, txscript.SigHashAll, k)
				require.NoError(tb, err)
				w = append(w, sig)
			}
			ti.Witness = append(w, f.witnessScript)
		} else {
			w, err := txscript.WitnessSignature(tx, hashes, i, utxo.Value, utxo.PkScript, txscript.SigHashAll, keys[0], true)
			require.NoError(tb, err)
			ti.Witness = w
		}
	}
	for i := range tx.TxIn {
		utxo := f.pkt.Inputs[i].WitnessUtxo
		vm, err := txscript.NewEngine(utxo.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, utxo.Value, fetcher)
		require.NoError(tb, err)
		require.NoError(tb, vm.Execute(), "input %d", i)
	}
	return tx
}

func TestCheckBTCRefusesTampered(t *testing.T) {
	mainnetAlice, _ := p2wpkh(t, testKey("alice"), &chaincfg.MainNetParams)
	mainnetBob, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(testKey("bob").PubKey().SerializeCompressed()), &chaincfg.MainNetParams)
	require.NoError(t, err)
	opReturn, err := txscript.NullDataScript([]byte("cordon"))
	require.NoError(t, err)

	tests := []struct {
		name   string
		tamper func(f *btcFixture)
		code   string
		msg    string // a part of the refusal's message
	}{
		{"destination swapped", func(f *btcFixture) { f.pkt.UnsignedTx.TxOut[0].PkScript = f.strangerScript },
			CodeDestination, "wd_alice: no output pays"},
		{"amount changed", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxOut[0].Value -= 1_000
			f.pkt.UnsignedTx.TxOut[2].Value += 1_000
		}, CodeAmount, "output 0 pays"},
		{"one output for two equal intents", func(f *btcFixture) { f.intents = append(f.intents, f.intents[0]) },
			CodeDestination, "wd_alice"},
		{"extra output to a stranger", func(f *btcFixture) {
			f.pkt.UnsignedTx.AddTxOut(wire.NewTxOut(5_000, f.strangerScript))
			f.pkt.Outputs = append(f.pkt.Outputs, psbt.POutput{})
			f.pkt.UnsignedTx.TxOut[2].Value -= 5_000
		}, CodeExtraOutput, "output 3: 5000 sat"},
		{"change to a script not ours, claimed as change", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxOut[2].PkScript = f.strangerScript
			f.pkt.Outputs[2].Bip32Derivation = []*psbt.Bip32Derivation{{
				PubKey: testKey("stranger").PubKey().SerializeCompressed(), MasterKeyFingerprint: 0x01020304, Bip32Path: []uint32{84 + 1<<31, 1<<31 + 1, 1 << 31, 1, 7},
			}}
		}, CodeChange, "output 2: claimed as change"},
		{"change to a script not ours, unclaimed", func(f *btcFixture) { f.pkt.UnsignedTx.TxOut[2].PkScript = f.strangerScript },
			CodeExtraOutput, "output 2: 690000 sat"},
		{"op_return output", func(f *btcFixture) {
			f.pkt.UnsignedTx.AddTxOut(wire.NewTxOut(0, opReturn))
			f.pkt.Outputs = append(f.pkt.Outputs, psbt.POutput{})
		}, CodeExtraOutput, "output 3: nulldata"},
		{"non-standard output", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxOut[2].PkScript = []byte{txscript.OP_TRUE}
		}, CodeExtraOutput, "output 2: nonstandard"},
		{"fee above the cap", func(f *btcFixture) { f.pkt.UnsignedTx.TxOut[2].Value -= 15_000 },
			CodeFee, "fee 25000 sat above cap 20000"},
		{"fee rate above the cap", func(f *btcFixture) { f.policy.MaxFeeRate = 41 },
			CodeFee, "above cap 41 sat/vbyte"},
		{"outputs worth more than the inputs", func(f *btcFixture) { f.pkt.UnsignedTx.TxOut[2].Value += 20_000 },
			CodeInput, "exceed inputs"},
		{"input amount lied about", func(f *btcFixture) { f.pkt.Inputs[1].WitnessUtxo.Value = 900_000 },
			CodeInput, "input 1 "},
		{"input script lied about", func(f *btcFixture) { f.pkt.Inputs[0].WitnessUtxo.PkScript = f.changeScript },
			CodeInput, "input 0 "},
		{"previous transaction missing", func(f *btcFixture) { f.pkt.Inputs[1].NonWitnessUtxo = nil },
			CodeInput, "previous tx false"},
		{"witness utxo missing", func(f *btcFixture) { f.pkt.Inputs[0].WitnessUtxo = nil },
			CodeInput, "has witness utxo false"},
		{"previous transaction hash mismatch", func(f *btcFixture) {
			other := f.prev1.Copy()
			other.LockTime = 1 // same outputs, another transaction
			f.pkt.Inputs[0].NonWitnessUtxo = other
		}, CodeInput, "input 0: previous transaction is"},
		{"outpoint beyond the previous transaction", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxIn[1].PreviousOutPoint.Index = 1
		}, CodeInput, "the previous transaction has 1 outputs"},
		{"input not the wallet's", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxIn[1].PreviousOutPoint = wire.OutPoint{Hash: f.prev1.TxHash(), Index: 2}
			f.fillInput(1, f.prev1)
			f.pkt.UnsignedTx.TxOut[2].Value = 490_000
		}, CodeInput, "is not the wallet's own"},
		{"wrong network", func(f *btcFixture) { f.intents[0].Network = "mainnet" }, CodeChain, `network "mainnet"`},
		{"wrong chain", func(f *btcFixture) { f.intents[1].Chain = "eth" }, CodeChain, `chain "eth"`},
		{"mainnet segwit destination", func(f *btcFixture) { f.intents[0].Destination = mainnetAlice.EncodeAddress() },
			CodeChain, "not a regtest address"},
		{"mainnet p2pkh destination", func(f *btcFixture) { f.intents[1].Destination = mainnetBob.EncodeAddress() },
			CodeChain, "is a mainnet address"},
		{"destination not an address", func(f *btcFixture) { f.intents[1].Destination = "bcrt1qnotanaddress" },
			CodeDestination, "wd_bob"},
		{"token asset", func(f *btcFixture) { f.intents[0].Asset = "usdt" }, CodeAsset, `asset "usdt"`},
		{"amount not canonical", func(f *btcFixture) { f.intents[0].Amount = "0600000" }, CodeAmount, `"0600000"`},
		{"version 1", func(f *btcFixture) { f.pkt.UnsignedTx.Version = 1 }, CodeMalformed, "version 1"},
		{"locktime set", func(f *btcFixture) { f.pkt.UnsignedTx.LockTime = 500 }, CodeMalformed, "locktime 500"},
		{"duplicate input", func(f *btcFixture) {
			f.pkt.UnsignedTx.AddTxIn(wire.NewTxIn(&f.pkt.UnsignedTx.TxIn[0].PreviousOutPoint, nil, nil))
			f.pkt.Inputs = append(f.pkt.Inputs, f.pkt.Inputs[0])
		}, CodeMalformed, "input 2 spends"},
		{"no outputs", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxOut = nil
			f.pkt.Outputs = nil
		}, CodeMalformed, "0 outputs"},
		{"no inputs", func(f *btcFixture) {
			f.pkt.UnsignedTx.TxIn = nil
			f.pkt.Inputs = nil
		}, CodeMalformed, "0 inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newBTCFixture(t)
			tt.tamper(f)
			_, err := f.check(t)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrRefused)
			require.Equal(t, tt.code, CodeOf(err), "%v", err)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestCheckBTCRefusesMalformedBytes(t *testing.T) {
	f := newBTCFixture(t)
	valid := f.bytes(t)

	// The first previous transaction's value, as the PSBT holds it
	// (key 0x01 0x00, then its length and bytes), and the same with a
	// byte more inside the value: the parser reads the transaction and
	// ignores the rest of the value.
	var prev bytes.Buffer
	require.NoError(t, f.prev1.Serialize(&prev))
	field := func(v []byte) []byte {
		var b bytes.Buffer
		b.Write([]byte{0x01, byte(psbt.NonWitnessUtxoType)})
		require.NoError(t, wire.WriteVarBytes(&b, 0, v))
		return b.Bytes()
	}
	stuffed := bytes.Replace(valid, field(prev.Bytes()), field(append(bytes.Clone(prev.Bytes()), 0xee)), 1)
	require.NotEqual(t, valid, stuffed)

	b64 := []byte(base64.StdEncoding.EncodeToString(valid))
	tests := []struct {
		name string
		b    []byte
		msg  string
	}{
		{"trailing byte", append(bytes.Clone(valid), 0x00), "1 bytes after the psbt"},
		{"a second psbt after it", append(bytes.Clone(valid), valid...), "bytes after the psbt"},
		{"truncated", valid[:len(valid)-1], "decode psbt"},
		{"empty", nil, "decode psbt"},
		{"base64", b64, "decode psbt"},
		{"bytes hidden inside a value", stuffed, "not in its canonical serialization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckBTC(tt.b, f.intents, f.policy)
			require.Equal(t, CodeMalformed, CodeOf(err), "%v", err)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
	// And the valid bytes themselves are accepted: the refusals above
	// are the tampering's.
	_, err := CheckBTC(valid, f.intents, f.policy)
	require.NoError(t, err)
}

func TestCheckBTCRefusesBadPolicy(t *testing.T) {
	f := newBTCFixture(t)
	b := f.bytes(t)
	for name, p := range map[string]BTCPolicy{
		"no params":    {Own: f.policy.Own, MaxFee: 1, MaxFeeRate: 1},
		"no own":       {Params: regtest, MaxFee: 1, MaxFeeRate: 1},
		"negative fee": {Params: regtest, Own: f.policy.Own, MaxFee: -1, MaxFeeRate: 1},
	} {
		_, err := CheckBTC(b, f.intents, p)
		require.Error(t, err, name)
		require.Empty(t, CodeOf(err), name)
	}
	_, err := CheckBTC(b, nil, f.policy)
	require.Error(t, err)
}

// TestCheckBTCAgreesWithBitcoinJS decodes the accepted PSBT with another
// implementation, bitcoinjs-lib, and holds CheckBTC's txid, outputs and
// fee (from the previous transactions, not the witness UTXOs) to its.
// Skipped without node and bitcoinjs-lib (set CORDON_BITCOINJS_NODE_PATH
// to the node_modules that holds it, e.g. after `npm install
// bitcoinjs-lib` in a temporary directory).
func TestCheckBTCAgreesWithBitcoinJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	env := os.Environ()
	if p := os.Getenv("CORDON_BITCOINJS_NODE_PATH"); p != "" {
		env = append(env, "NODE_PATH="+p)
	}
	probe := exec.Command(node, "-e", "require('bitcoinjs-lib')")
	probe.Env = env
	if err := probe.Run(); err != nil {
		t.Skip("bitcoinjs-lib not found (set CORDON_BITCOINJS_NODE_PATH)")
	}
	const script = `
const bitcoin = require('bitcoinjs-lib');
const b64 = require('fs').readFileSync(0, 'utf8').trim();
const psbt = bitcoin.Psbt.fromBase64(b64, { network: bitcoin.networks.regtest });
const tx = bitcoin.Transaction.fromBuffer(psbt.data.globalMap.unsignedTx.toBuffer());
let inSum = 0n;
psbt.txInputs.forEach((ti, i) => {
  const prev = bitcoin.Transaction.fromBuffer(psbt.data.inputs[i].nonWitnessUtxo);
  if (prev.getId() !== Buffer.from(ti.hash).reverse().toString('hex')) throw new Error('input ' + i + ': previous tx is not the outpoint\'s');
  inSum += BigInt(prev.outs[ti.index].value);
});
let outSum = 0n;
const outputs = psbt.txOutputs.map(o => { outSum += BigInt(o.value); return { address: o.address, value: String(o.value) }; });
process.stdout.write(JSON.stringify({ txid: tx.getId(), fee: String(inSum - outSum), outputs }));
`
	f := newBTCFixture(t)
	got, err := f.check(t)
	require.NoError(t, err)

	cmd := exec.Command(node, "-e", script)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(base64.StdEncoding.EncodeToString(f.bytes(t)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var js struct {
		TxID    string `json:"txid"`
		Fee     string `json:"fee"`
		Outputs []struct {
			Address string `json:"address"`
			Value   string `json:"value"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(out, &js), string(out))
	require.Equal(t, got.TxID, js.TxID)
	require.Equal(t, "10000", js.Fee)
	require.Len(t, js.Outputs, got.Outputs)
	changeAddr, _ := p2wpkh(t, testKey("change"), regtest)
	want := []struct{ addr, value string }{
		{f.intents[0].Destination, f.intents[0].Amount},
		{f.intents[1].Destination, f.intents[1].Amount},
		{changeAddr.EncodeAddress(), "690000"},
	}
	for i, w := range want {
		require.Equal(t, w.addr, js.Outputs[i].Address, "output %d", i)
		require.Equal(t, w.value, js.Outputs[i].Value, "output %d", i)
	}
}

// FuzzCheckBTC: no input panics, and whatever is accepted keeps to the
// policy.
func FuzzCheckBTC(f *testing.F) {
	fx := newBTCFixture(f)
	f.Add(fx.bytes(f))
	f.Add([]byte("psbt\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := CheckBTC(b, fx.intents, fx.policy)
		if err != nil {
			var r *Refusal
			require.True(t, errors.As(err, &r), "%v", err)
			return
		}
		require.GreaterOrEqual(t, got.Fee, int64(0))
		require.LessOrEqual(t, got.Fee, fx.policy.MaxFee)
		require.LessOrEqual(t, got.Fee, fx.policy.MaxFeeRate*got.VSize)
	})
}

// TestCheckBTCCapsAreInclusive: a fee of exactly MaxFee, and a rate
// within MaxFeeRate, pass; one satoshi more or a rate just above do not.
func TestCheckBTCCapsAreInclusive(t *testing.T) {
	f := newBTCFixture(t)
	f.policy.MaxFee = 10_000
	f.policy.MaxFeeRate = 42 // 10,000 sat / 243 vbyte is 41.15 sat/vbyte
	_, err := f.check(t)
	require.NoError(t, err)

	f.policy.MaxFee = 9_999
	_, err = f.check(t)
	require.Equal(t, CodeFee, CodeOf(err), "%v", err)

	f.policy.MaxFee = 10_000
	f.policy.MaxFeeRate = 41
	_, err = f.check(t)
	require.Equal(t, CodeFee, CodeOf(err), "%v", err)
}
