package wallet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/txcheck"
)

// Errors of a build.
var (
	// ErrFeeCap: the fee rate asked for is above the wallet's cap, or the
	// fee a build needs is above its fee cap. Refused, never clamped.
	ErrFeeCap = errors.New("wallet: fee above the cap")
	// ErrGasCap: the node's gas estimate of an Ethereum transfer is
	// above the wallet's gas limit (gas_native, gas_token). Refused: a
	// transaction that runs out of gas spends its nonce and its fee and
	// pays nobody.
	ErrGasCap = errors.New("wallet: gas above the cap")
	// ErrInsufficientFunds: the spendable outputs do not cover the
	// intents and the fee.
	ErrInsufficientFunds = errors.New("wallet: insufficient spendable funds")
	// ErrIntent: an intent the wallet cannot carry out (another chain,
	// network or asset, a bad amount or destination).
	ErrIntent = errors.New("wallet: unusable intent")
	// ErrSignature: a signature that does not verify, is not low-S, or
	// is missing.
	ErrSignature = errors.New("wallet: bad or missing signature")
)

// PrevTxFetcher returns the full transaction txid (a node's
// getrawtransaction): every input's previous transaction goes into the
// PSBT, checked against the outpoint.
type PrevTxFetcher func(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)

// BTCBuilder builds one Bitcoin wallet's transactions from its view.
type BTCBuilder struct {
	wallet BTCWallet
	script *BTCScript
	view   *UTXOView
	fetch  PrevTxFetcher
}

// NewBTCBuilder builds for w (validated), selecting from view, reading
// previous transactions with fetch.
func NewBTCBuilder(w BTCWallet, view *UTXOView, fetch PrevTxFetcher) (*BTCBuilder, error) {
	s, err := w.Script()
	if err != nil {
		return nil, err
	}
	if view == nil || fetch == nil || !view.own[s.Address] || view.network != w.Network {
		return nil, fmt.Errorf("wallet %s: a view of %s on %s and a fetcher are needed", w.Name, s.Address, w.Network)
	}
	return &BTCBuilder{wallet: w, script: s, view: view, fetch: fetch}, nil
}

// Script is the wallet's script.
func (b *BTCBuilder) Script() *BTCScript { return b.script }

// Policy is the txcheck policy the wallet's own caps give (the second
// layer holds its own copy; this one is for tests and the caller).
func (b *BTCBuilder) Policy() txcheck.BTCPolicy {
	return b.wallet.CheckPolicy(b.script)
}

// BTCBuild is a built, unsigned transaction: its PSBT (binary BIP 174),
// the outputs it spends (reserved in the view until released) and its
// fee.
type BTCBuild struct {
	PSBT   []byte
	Packet *psbt.Packet
	TxID   string
	Inputs []UTXO
	Fee    int64 // sat
	VSize  int64 // estimated signed virtual size (txcheck.EstimateVSize)
	Change int64 // sat back to the wallet (0: none, below dust it went to the fee)
	script *BTCScript
}

// Witness weights (weight units) of a signed input, as
// txcheck.EstimateVSize counts them: a 72-byte signature with its
// sighash byte, and a compressed key or the CHECKMULTISIG dummy, two
// signatures and the witness script.
func (s *BTCScript) inputWitnessWeight() int64 {
	if s.WitnessScript == nil {
		return 1 + 1 + 72 + 1 + 33
	}
	n := int64(len(s.WitnessScript))
	return 1 + 1 + 2*(1+72) + int64(wire.VarIntSerializeSize(uint64(n))) + n
}

// vsize of a transaction of nIn inputs of the wallet and outs.
func (s *BTCScript) vsize(nIn int, outs []*wire.TxOut) int64 {
	stripped := 4 + wire.VarIntSerializeSize(uint64(nIn)) + nIn*41 + wire.VarIntSerializeSize(uint64(len(outs))) + 4
	for _, o := range outs {
		stripped += o.SerializeSize()
	}
	w := int64(stripped)*4 + 2 + int64(nIn)*s.inputWitnessWeight()
	return (w + 3) / 4
}

// intentOutputs are the outputs paying intents, in their order.
func intentOutputs(intents []intent.Intent, s *BTCScript) ([]*wire.TxOut, int64, error) {
	if len(intents) == 0 {
		return nil, 0, fmt.Errorf("%w: no intents", ErrIntent)
	}
	var outs []*wire.TxOut
	var sum int64
	for _, in := range intents {
		if in.Chain != "btc" || in.Network != s.Params.Name || in.Asset != intent.Native {
			return nil, 0, fmt.Errorf("%w: %s is %s/%s/%s, the wallet btc/%s/native", ErrIntent, in.ID, in.Chain, in.Network, in.Asset, s.Params.Name)
		}
		amt, err := strconv.ParseInt(in.Amount, 10, 64)
		if err != nil || strconv.FormatInt(amt, 10) != in.Amount || amt <= 0 || amt > btcutil.MaxSatoshi {
			return nil, 0, fmt.Errorf("%w: %s: amount %q", ErrIntent, in.ID, in.Amount)
		}
		addr, err := btcutil.DecodeAddress(in.Destination, s.Params)
		if err != nil || !addr.IsForNet(s.Params) {
			return nil, 0, fmt.Errorf("%w: %s: destination %q is not a %s address", ErrIntent, in.ID, in.Destination, s.Params.Name)
		}
		pk, err := txscript.PayToAddrScript(addr)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s: destination %q: %w", ErrIntent, in.ID, in.Destination, err)
		}
		outs = append(outs, wire.NewTxOut(amt, pk))
		if sum += amt; sum > btcutil.MaxSatoshi {
			return nil, 0, fmt.Errorf("%w: the intents add up to more than there are bitcoin", ErrIntent)
		}
	}
	return outs, sum, nil
}

// Build pays intents (one output each, in their order; change last) at
// feeRate sat/vbyte (the node's estimate). Coins are selected largest
// first (ties: oldest, then by outpoint), until they pay the intents and
// the fee; change below the dust limit goes to the fee. A rate above the
// wallet's cap is refused (ErrFeeCap). The selected outputs are reserved
// in the view under the transaction's id before Build returns; call
// Abandon to release them if the transaction is never broadcast.
func (b *BTCBuilder) Build(ctx context.Context, intents []intent.Intent, feeRate int64) (*BTCBuild, error) {
	if feeRate <= 0 {
		return nil, fmt.Errorf("wallet %s: fee rate %d sat/vbyte", b.wallet.Name, feeRate)
	}
	if feeRate > b.wallet.MaxFeeRate {
		return nil, fmt.Errorf("%w: fee rate %d sat/vbyte, the cap of wallet %s is %d", ErrFeeCap, feeRate, b.wallet.Name, b.wallet.MaxFeeRate)
	}
	outs, target, err := intentOutputs(intents, b.script)
	if err != nil {
		return nil, err
	}
	tx, inputs, fee, change, err := b.selectAndReserve(outs, target, feeRate)
	if err != nil {
		return nil, err
	}
	txid := tx.TxHash().String()
	built, err := b.packet(ctx, tx, inputs)
	if err != nil {
		b.view.Release(txid)
		return nil, err
	}
	built.TxID, built.Inputs, built.Fee, built.Change = txid, inputs, fee, change
	if built.VSize != b.script.vsize(len(inputs), tx.TxOut) {
		b.view.Release(txid)
		return nil, fmt.Errorf("wallet %s: size estimate %d vbyte, txcheck's %d", b.wallet.Name, b.script.vsize(len(inputs), tx.TxOut), built.VSize)
	}
	return built, nil
}

// Abandon releases the outputs a build reserved.
func (b *BTCBuilder) Abandon(txid string) int { return b.view.Release(txid) }

func (b *BTCBuilder) selectAndReserve(outs []*wire.TxOut, target, rate int64) (*wire.MsgTx, []UTXO, int64, int64, error) {
	v := b.view
	v.mu.Lock()
	defer v.mu.Unlock()
	coins := v.spendable(b.wallet.MinConfirmations)
	sort.SliceStable(coins, func(i, j int) bool {
		if coins[i].Value != coins[j].Value {
			return coins[i].Value > coins[j].Value
		}
		return coins[i].Height < coins[j].Height
	})
	changeOut := wire.NewTxOut(0, b.script.PkScript)
	withChange := append(append([]*wire.TxOut{}, outs...), changeOut)
	var sum int64
	var total int64
	for _, c := range coins {
		total += c.Value
	}
	for n := 1; n <= len(coins); n++ {
		sum += coins[n-1].Value
		picked := coins[:n]
		if fee := rate * b.script.vsize(n, withChange); sum-target-fee >= b.wallet.DustLimit {
			change := sum - target - fee
			return b.finish(outs, picked, fee, change)
		}
		vs := b.script.vsize(n, outs)
		if fee := rate * vs; sum-target >= fee {
			fee = sum - target // the dust change, too
			if (fee+vs-1)/vs <= b.wallet.MaxFeeRate {
				return b.finish(outs, picked, fee, 0)
			}
		}
	}
	return nil, nil, 0, 0, fmt.Errorf("%w: wallet %s has %d sat spendable in %d outputs, the intents need %d sat and the fee at %d sat/vbyte",
		ErrInsufficientFunds, b.wallet.Name, total, len(coins), target, rate)
}

// finish makes the unsigned transaction and reserves its inputs; v.mu
// is held.
func (b *BTCBuilder) finish(outs []*wire.TxOut, picked []UTXO, fee, change int64) (*wire.MsgTx, []UTXO, int64, int64, error) {
	if fee > b.wallet.MaxFee {
		return nil, nil, 0, 0, fmt.Errorf("%w: fee %d sat, the cap of wallet %s is %d", ErrFeeCap, fee, b.wallet.Name, b.wallet.MaxFee)
	}
	tx := wire.NewMsgTx(2)
	inputs := append([]UTXO{}, picked...)
	for _, u := range inputs {
		op, err := u.OutPoint()
		if err != nil {
			return nil, nil, 0, 0, err
		}
		// Signals replaceability (BIP 125): a stuck transaction can be
		// replaced by a new approval's.
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: op, Sequence: wire.MaxTxInSequenceNum - 2})
	}
	for _, o := range outs {
		tx.AddTxOut(wire.NewTxOut(o.Value, o.PkScript))
	}
	if change > 0 {
		tx.AddTxOut(wire.NewTxOut(change, b.script.PkScript))
	}
	if err := b.view.reserve(tx.TxHash().String(), inputs); err != nil {
		return nil, nil, 0, 0, err
	}
	return tx, inputs, fee, change, nil
}

// packet fills in every input's witness UTXO, previous transaction
// (checked: its hash is the outpoint's, its output the view's) and
// witness script.
func (b *BTCBuilder) packet(ctx context.Context, tx *wire.MsgTx, inputs []UTXO) (*BTCBuild, error) {
	ops := make([]*wire.OutPoint, len(tx.TxIn))
	seqs := make([]uint32, len(tx.TxIn))
	for i, ti := range tx.TxIn {
		ops[i], seqs[i] = &ti.PreviousOutPoint, ti.Sequence
	}
	pkt, err := psbt.New(ops, tx.TxOut, tx.Version, tx.LockTime, seqs)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: psbt: %w", b.wallet.Name, err)
	}
	for i, ti := range tx.TxIn {
		op := ti.PreviousOutPoint
		prev, err := b.fetch(ctx, op.Hash)
		if err != nil {
			return nil, fmt.Errorf("wallet %s: fetch previous transaction %v: %w", b.wallet.Name, op.Hash, err)
		}
		if prev == nil || prev.TxHash() != op.Hash {
			return nil, fmt.Errorf("wallet %s: the fetched previous transaction of input %d is not %v", b.wallet.Name, i, op.Hash)
		}
		if int(op.Index) >= len(prev.TxOut) {
			return nil, fmt.Errorf("wallet %s: input %d: %v has %d outputs", b.wallet.Name, i, op, len(prev.TxOut))
		}
		out := prev.TxOut[op.Index]
		if out.Value != inputs[i].Value || !bytes.Equal(out.PkScript, b.script.PkScript) {
			return nil, fmt.Errorf("wallet %s: input %d: %v pays %d sat to %x, the view says %d sat to the wallet",
				b.wallet.Name, i, op, out.Value, out.PkScript, inputs[i].Value)
		}
		pi := &pkt.Inputs[i]
		pi.WitnessUtxo = wire.NewTxOut(out.Value, out.PkScript)
		pi.NonWitnessUtxo = prev
		pi.SighashType = txscript.SigHashAll
		if b.script.WitnessScript != nil {
			pi.WitnessScript = b.script.WitnessScript
		}
	}
	var buf bytes.Buffer
	if err := pkt.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("wallet %s: serialize psbt: %w", b.wallet.Name, err)
	}
	return &BTCBuild{PSBT: buf.Bytes(), Packet: pkt, VSize: txcheck.EstimateVSize(pkt), script: b.script}, nil
}

// InputDigest is what signs one input: the BIP-143 digest (SIGHASH_ALL)
// and the keys that may sign it, in the script's order; Need of them
// must.
type InputDigest struct {
	Input  int
	Digest [32]byte
	Keys   []KeyRef
	Need   int
}

func prevFetcher(pkt *psbt.Packet) *txscript.MultiPrevOutFetcher {
	f := txscript.NewMultiPrevOutFetcher(nil)
	for i, ti := range pkt.UnsignedTx.TxIn {
		f.AddPrevOut(ti.PreviousOutPoint, pkt.Inputs[i].WitnessUtxo)
	}
	return f
}

// Digests are the digests to sign, one per input.
func (b *BTCBuild) Digests() ([]InputDigest, error) {
	tx := b.Packet.UnsignedTx
	f := prevFetcher(b.Packet)
	hashes := txscript.NewTxSigHashes(tx, f)
	need := 1
	sub := b.script.PkScript
	if b.script.WitnessScript != nil {
		need, sub = 2, b.script.WitnessScript
	}
	out := make([]InputDigest, len(tx.TxIn))
	for i := range tx.TxIn {
		h, err := txscript.CalcWitnessSigHash(sub, hashes, txscript.SigHashAll, tx, i, b.Packet.Inputs[i].WitnessUtxo.Value)
		if err != nil {
			return nil, fmt.Errorf("sighash of input %d: %w", i, err)
		}
		out[i] = InputDigest{Input: i, Digest: [32]byte(h), Keys: b.script.Keys, Need: need}
	}
	return out, nil
}

// derSig checks sig over digest with pk (valid, low-S) and returns its
// DER form with the SIGHASH_ALL byte.
func derSig(sig sdk.Signature, digest [32]byte, pk *btcec.PublicKey) ([]byte, error) {
	var r, s btcec.ModNScalar
	if r.SetBytes(&sig.R) != 0 || r.IsZero() || s.SetBytes(&sig.S) != 0 || s.IsZero() {
		return nil, fmt.Errorf("%w: R or S out of range", ErrSignature)
	}
	if s.IsOverHalfOrder() {
		return nil, fmt.Errorf("%w: S is not low", ErrSignature)
	}
	es := ecdsa.NewSignature(&r, &s)
	if !es.Verify(digest[:], pk) {
		return nil, fmt.Errorf("%w: does not verify with key %x", ErrSignature, pk.SerializeCompressed())
	}
	return append(es.Serialize(), byte(txscript.SigHashAll)), nil
}

// Finalize assembles the signed transaction from sigs: for each input,
// the signatures by key position (InputDigest.Keys). P2WPKH takes
// position 0; the 2-of-3 takes the first two positions that signed, in
// the script's order (the witness: the CHECKMULTISIG dummy, the two
// signatures, the witness script). Every signature is checked, and every
// input run through btcd's script engine before the transaction is
// returned.
func (b *BTCBuild) Finalize(sigs []map[int]sdk.Signature) (*wire.MsgTx, error) {
	digests, err := b.Digests()
	if err != nil {
		return nil, err
	}
	if len(sigs) != len(digests) {
		return nil, fmt.Errorf("%w: signatures for %d inputs, the transaction has %d", ErrSignature, len(sigs), len(digests))
	}
	tx := b.Packet.UnsignedTx.Copy()
	for i, d := range digests {
		var wit wire.TxWitness
		if b.script.WitnessScript == nil {
			sig, ok := sigs[i][0]
			if !ok || len(sigs[i]) != 1 {
				return nil, fmt.Errorf("%w: input %d wants the signature of key 0 only", ErrSignature, i)
			}
			der, err := derSig(sig, d.Digest, b.script.pubKeys[0])
			if err != nil {
				return nil, fmt.Errorf("input %d: %w", i, err)
			}
			wit = wire.TxWitness{der, b.script.pubKeys[0].SerializeCompressed()}
		} else {
			wit = wire.TxWitness{nil}
			for k := range b.script.pubKeys {
				sig, ok := sigs[i][k]
				if !ok || len(wit) == 1+d.Need {
					continue
				}
				der, err := derSig(sig, d.Digest, b.script.pubKeys[k])
				if err != nil {
					return nil, fmt.Errorf("input %d key %d: %w", i, k, err)
				}
				wit = append(wit, der)
			}
			for k := range sigs[i] {
				if k < 0 || k >= len(b.script.pubKeys) {
					return nil, fmt.Errorf("%w: input %d: no key %d", ErrSignature, i, k)
				}
			}
			if len(wit) != 1+d.Need {
				return nil, fmt.Errorf("%w: input %d has %d signatures, it needs %d", ErrSignature, i, len(wit)-1, d.Need)
			}
			wit = append(wit, b.script.WitnessScript)
		}
		tx.TxIn[i].Witness = wit
	}
	if err := verifyInputs(tx, b.Packet); err != nil {
		return nil, err
	}
	return tx, nil
}

// verifyInputs runs every input of tx through btcd's script engine.
func verifyInputs(tx *wire.MsgTx, pkt *psbt.Packet) error {
	f := prevFetcher(pkt)
	hashes := txscript.NewTxSigHashes(tx, f)
	for i := range tx.TxIn {
		prev := pkt.Inputs[i].WitnessUtxo
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, prev.Value, f)
		if err != nil {
			return fmt.Errorf("%w: input %d: script engine: %w", ErrSignature, i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("%w: input %d does not verify: %w", ErrSignature, i, err)
		}
	}
	return nil
}

// Load makes a build of a PSBT that the second risk layer decoded and
// checked itself (txcheck.CheckBTC) against this script: the layer
// signs from its own copy of the wallet, never from the builder's
// objects. Digests and Finalize then work as on a build of its own.
func (s *BTCScript) Load(psbtBytes []byte) (*BTCBuild, error) {
	pkt, err := psbt.NewFromRawBytes(bytes.NewReader(psbtBytes), false)
	if err != nil {
		return nil, fmt.Errorf("wallet: decode psbt: %w", err)
	}
	if len(pkt.Inputs) != len(pkt.UnsignedTx.TxIn) {
		return nil, fmt.Errorf("wallet: psbt has %d inputs for %d transaction inputs", len(pkt.Inputs), len(pkt.UnsignedTx.TxIn))
	}
	for i := range pkt.Inputs {
		if pkt.Inputs[i].WitnessUtxo == nil || !s.Own(pkt.Inputs[i].WitnessUtxo.PkScript) {
			return nil, fmt.Errorf("wallet: input %d does not spend the wallet's script %s", i, s.Address)
		}
	}
	return &BTCBuild{PSBT: psbtBytes, Packet: pkt, TxID: pkt.UnsignedTx.TxHash().String(), script: s}, nil
}
