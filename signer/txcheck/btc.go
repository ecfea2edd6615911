package txcheck

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/cordonhq/cordon/signer/intent"
)

// BTCPolicy is what CheckBTC holds a PSBT to.
type BTCPolicy struct {
	// Params is the network (chaincfg.MainNetParams, RegressionNetParams,
	// SimNetParams); every intent's Network must be its Name.
	Params *chaincfg.Params
	// Own tells whether a pkScript is one of the wallet's own scripts,
	// re-derived by the caller from the wallet's keys, never taken from
	// the PSBT. Every input must spend one; every output that pays no
	// intent must pay one (change).
	Own func(pkScript []byte) bool
	// MaxFee caps the fee (inputs - outputs), in satoshis.
	MaxFee int64
	// MaxFeeRate caps the fee rate in satoshis per virtual byte, over the
	// virtual size estimated by EstimateVSize.
	MaxFeeRate int64
}

// BTCTx is what CheckBTC found in a PSBT it accepted.
type BTCTx struct {
	TxID    string // the unsigned transaction's id (it is segwit: signing does not change it)
	Fee     int64  // satoshis
	VSize   int64  // estimated virtual size of the signed transaction (EstimateVSize)
	Inputs  int
	Outputs int
	Change  int64 // satoshis paid back to the wallet's own scripts
}

// Witness sizes, in weight units (one per byte), that EstimateVSize
// assumes for the signed inputs.
const (
	sigLen = 72 // DER signature (at most 71 with low S) + sighash byte
	// p2wpkhWitness: item count, sig push, compressed key push.
	p2wpkhWitness = 1 + 1 + sigLen + 1 + 33
	// multisig2of3Script is the witness script length of a 2-of-3
	// CHECKMULTISIG over compressed keys: OP_2 3×(push 33) OP_3 OP_CHECKMULTISIG.
	multisig2of3Script = 1 + 3*34 + 1 + 1
)

// CheckBTC decodes psbtBytes (binary BIP 174, not base64) strictly and
// accepts it only when it carries out exactly intents, as p allows: each
// intent paid by one output of exactly its amount to exactly its
// address, every other output change to one of the wallet's own scripts,
// every input one of the wallet's own outputs whose amount and script the
// full previous transaction confirms (CVE-2020-14199), and a fee and fee
// rate within their caps. Anything else is a *Refusal; a bad policy is a
// plain error.
//
// What is refused, and with which code:
//   - CodeMalformed: bytes that are not a PSBT, bytes after it, a PSBT
//     that does not re-serialize to exactly its bytes (trailing bytes
//     inside a value, keys out of order), no inputs or no outputs, a
//     spent outpoint listed twice, a version other than 2, a locktime
//     other than 0, a script signature or witness in the unsigned tx.
//   - CodeInput: an input without both its witness UTXO and its full
//     previous transaction, a previous transaction whose hash is not the
//     outpoint's, a witness UTXO the previous transaction does not
//     confirm (amount and script), an input script that is not the
//     wallet's own, or not P2WPKH or P2WSH (the only kinds whose size
//     the fee rate estimate knows), outputs worth more than the inputs.
//   - CodeChain, CodeAsset: an intent of another chain, network or asset,
//     or whose address belongs to another network.
//   - CodeDestination: an intent no output pays (or whose address does
//     not decode); CodeAmount: an intent whose address is paid, but not
//     its amount.
//   - CodeExtraOutput: an OP_RETURN, non-standard or zero output, or one
//     that pays neither an intent nor the wallet; CodeChange: such an
//     output that the PSBT claims is change (it carries BIP 32
//     derivations or a redeem or witness script for it).
//   - CodeFee: a fee above MaxFee or a fee rate above MaxFeeRate.
func CheckBTC(psbtBytes []byte, intents []intent.Intent, p BTCPolicy) (*BTCTx, error) {
	if p.Params == nil || p.Own == nil {
		return nil, errors.New("check btc: policy without params or own scripts")
	}
	if p.MaxFee < 0 || p.MaxFeeRate < 0 {
		return nil, fmt.Errorf("check btc: negative fee cap (max fee %d, max fee rate %d)", p.MaxFee, p.MaxFeeRate)
	}
	if len(intents) == 0 {
		return nil, errors.New("check btc: no intents")
	}
	pkt, err := decodePSBT(psbtBytes)
	if err != nil {
		return nil, err
	}
	tx := pkt.UnsignedTx
	if err := checkTxShape(tx); err != nil {
		return nil, err
	}
	in, err := checkInputs(pkt, p.Own)
	if err != nil {
		return nil, err
	}
	paid, err := matchIntents(tx, intents, p.Params)
	if err != nil {
		return nil, err
	}
	out, change, err := checkOutputs(pkt, paid, p.Own)
	if err != nil {
		return nil, err
	}
	fee := in - out
	if fee < 0 {
		return nil, refuse(CodeInput, "outputs %d sat exceed inputs %d sat", out, in)
	}
	if fee > p.MaxFee {
		return nil, refuse(CodeFee, "fee %d sat above cap %d sat", fee, p.MaxFee)
	}
	vsize := EstimateVSize(pkt)
	// fee/vsize > MaxFeeRate, exactly: the rate rounded up, and no
	// product that a large cap could overflow.
	if (fee+vsize-1)/vsize > p.MaxFeeRate {
		return nil, refuse(CodeFee, "fee rate %d sat / %d vbyte (%.2f sat/vbyte) above cap %d sat/vbyte",
			fee, vsize, float64(fee)/float64(vsize), p.MaxFeeRate)
	}
	return &BTCTx{
		TxID: tx.TxHash().String(), Fee: fee, VSize: vsize,
		Inputs: len(tx.TxIn), Outputs: len(tx.TxOut), Change: change,
	}, nil
}

// decodePSBT parses b as one binary PSBT and nothing else: it must be
// read to its end and serialize back to exactly b, so no byte of it is
// ignored (the parser does not check that a value is used to its end).
func decodePSBT(b []byte) (*psbt.Packet, error) {
	r := bytes.NewReader(b)
	pkt, err := psbt.NewFromRawBytes(r, false)
	if err != nil {
		return nil, refuse(CodeMalformed, "decode psbt: %v", err)
	}
	if r.Len() != 0 {
		return nil, refuse(CodeMalformed, "%d bytes after the psbt", r.Len())
	}
	var again bytes.Buffer
	if err := pkt.Serialize(&again); err != nil {
		return nil, refuse(CodeMalformed, "re-serialize psbt: %v", err)
	}
	if !bytes.Equal(again.Bytes(), b) {
		return nil, refuse(CodeMalformed, "psbt is not in its canonical serialization (%d bytes, re-serialized %d)", len(b), again.Len())
	}
	return pkt, nil
}

func checkTxShape(tx *wire.MsgTx) error {
	if len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return refuse(CodeMalformed, "%d inputs and %d outputs", len(tx.TxIn), len(tx.TxOut))
	}
	if tx.Version != 2 {
		return refuse(CodeMalformed, "version %d, want 2", tx.Version)
	}
	if tx.LockTime != 0 {
		return refuse(CodeMalformed, "locktime %d, want 0", tx.LockTime)
	}
	seen := make(map[wire.OutPoint]int, len(tx.TxIn))
	for i, ti := range tx.TxIn {
		if len(ti.SignatureScript) != 0 || len(ti.Witness) != 0 {
			return refuse(CodeMalformed, "input %d: already signed", i)
		}
		if j, dup := seen[ti.PreviousOutPoint]; dup {
			return refuse(CodeMalformed, "input %d spends %v, as input %d does", i, ti.PreviousOutPoint, j)
		}
		seen[ti.PreviousOutPoint] = i
	}
	return nil
}

// checkInputs returns the sum of the inputs' amounts, each confirmed by
// the full previous transaction.
func checkInputs(pkt *psbt.Packet, own func([]byte) bool) (int64, error) {
	var sum int64
	for i, ti := range pkt.UnsignedTx.TxIn {
		pi := pkt.Inputs[i]
		op := ti.PreviousOutPoint
		if pi.WitnessUtxo == nil || pi.NonWitnessUtxo == nil {
			return 0, refuse(CodeInput, "input %d (%v): needs both the witness utxo and the previous transaction (has witness utxo %t, previous tx %t)",
				i, op, pi.WitnessUtxo != nil, pi.NonWitnessUtxo != nil)
		}
		if h := pi.NonWitnessUtxo.TxHash(); h != op.Hash {
			return 0, refuse(CodeInput, "input %d: previous transaction is %v, the outpoint names %v", i, h, op.Hash)
		}
		if int64(op.Index) >= int64(len(pi.NonWitnessUtxo.TxOut)) {
			return 0, refuse(CodeInput, "input %d: outpoint %v, the previous transaction has %d outputs", i, op, len(pi.NonWitnessUtxo.TxOut))
		}
		prev := pi.NonWitnessUtxo.TxOut[op.Index]
		if prev.Value != pi.WitnessUtxo.Value || !bytes.Equal(prev.PkScript, pi.WitnessUtxo.PkScript) {
			return 0, refuse(CodeInput, "input %d (%v): witness utxo %d sat to %x, the previous transaction says %d sat to %x",
				i, op, pi.WitnessUtxo.Value, pi.WitnessUtxo.PkScript, prev.Value, prev.PkScript)
		}
		if prev.Value < 0 || prev.Value > btcutil.MaxSatoshi {
			return 0, refuse(CodeInput, "input %d: amount %d sat out of range", i, prev.Value)
		}
		if !own(prev.PkScript) {
			return 0, refuse(CodeInput, "input %d (%v): script %x is not the wallet's own", i, op, prev.PkScript)
		}
		if c := txscript.GetScriptClass(prev.PkScript); c != txscript.WitnessV0PubKeyHashTy && c != txscript.WitnessV0ScriptHashTy {
			return 0, refuse(CodeInput, "input %d (%v): script class %v, only p2wpkh and p2wsh are spent", i, op, c)
		}
		sum += prev.Value
		if sum > btcutil.MaxSatoshi {
			return 0, refuse(CodeInput, "inputs worth %d sat, more than there are", sum)
		}
	}
	return sum, nil
}

// matchIntents returns, for each output, whether it pays an intent. Each
// intent takes one output of exactly its script and amount.
func matchIntents(tx *wire.MsgTx, intents []intent.Intent, params *chaincfg.Params) ([]bool, error) {
	type want struct {
		script []byte
		amount int64
	}
	wants := make([]want, len(intents))
	for k, in := range intents {
		if in.Chain != "btc" || in.Network != params.Name {
			return nil, refuse(CodeChain, "intent %s: chain %q network %q, checking btc %q", in.ID, in.Chain, in.Network, params.Name)
		}
		if in.Asset != intent.Native {
			return nil, refuse(CodeAsset, "intent %s: asset %q, bitcoin has only %q", in.ID, in.Asset, intent.Native)
		}
		amount, err := strconv.ParseInt(in.Amount, 10, 64)
		if err != nil || strconv.FormatInt(amount, 10) != in.Amount || amount <= 0 || amount > btcutil.MaxSatoshi {
			return nil, refuse(CodeAmount, "intent %s: amount %q is not a satoshi amount", in.ID, in.Amount)
		}
		addr, err := btcutil.DecodeAddress(in.Destination, params)
		if err != nil {
			if net := addressNet(in.Destination); net != "" {
				return nil, refuse(CodeChain, "intent %s: destination %q is a %s address, checking %s", in.ID, in.Destination, net, params.Name)
			}
			return nil, refuse(CodeDestination, "intent %s: destination %q: %v", in.ID, in.Destination, err)
		}
		if !addr.IsForNet(params) {
			return nil, refuse(CodeChain, "intent %s: destination %q is not a %s address", in.ID, in.Destination, params.Name)
		}
		script, err := txscript.PayToAddrScript(addr)
		if err != nil {
			return nil, refuse(CodeDestination, "intent %s: destination %q: %v", in.ID, in.Destination, err)
		}
		wants[k] = want{script, amount}
	}
	paid := make([]bool, len(tx.TxOut))
	matched := make([]bool, len(intents))
	// Exact matches first: outputs of the same script and amount are
	// interchangeable, so taking the first free one never steals another
	// intent's.
	for k, w := range wants {
		for j, to := range tx.TxOut {
			if !paid[j] && to.Value == w.amount && bytes.Equal(to.PkScript, w.script) {
				paid[j], matched[k] = true, true
				break
			}
		}
	}
	for k, w := range wants {
		if matched[k] {
			continue
		}
		for j, to := range tx.TxOut {
			if !paid[j] && bytes.Equal(to.PkScript, w.script) {
				return nil, refuse(CodeAmount, "intent %s: output %d pays %s %d sat, the intent %d sat",
					intents[k].ID, j, intents[k].Destination, to.Value, w.amount)
			}
		}
		return nil, refuse(CodeDestination, "intent %s: no output pays %s (%d sat)", intents[k].ID, intents[k].Destination, w.amount)
	}
	return paid, nil
}

// addressNet is the name of the network whose address addr is, when it
// is one of the networks cordon knows ("" otherwise): to tell a
// destination on another network (CodeChain) from one that is no
// address at all.
func addressNet(addr string) string {
	for _, net := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.RegressionNetParams, &chaincfg.SimNetParams} {
		if a, err := btcutil.DecodeAddress(addr, net); err == nil && a.IsForNet(net) {
			return net.Name
		}
	}
	return ""
}

// checkOutputs returns the sum of all outputs and of the change among
// them; every output must be standard and pay an intent (paid) or the
// wallet.
func checkOutputs(pkt *psbt.Packet, paid []bool, own func([]byte) bool) (sum, change int64, err error) {
	for j, to := range pkt.UnsignedTx.TxOut {
		switch c := txscript.GetScriptClass(to.PkScript); c {
		case txscript.PubKeyHashTy, txscript.ScriptHashTy, txscript.WitnessV0PubKeyHashTy,
			txscript.WitnessV0ScriptHashTy, txscript.WitnessV1TaprootTy:
		default:
			return 0, 0, refuse(CodeExtraOutput, "output %d: %v script %x (%d sat)", j, c, to.PkScript, to.Value)
		}
		if to.Value <= 0 || to.Value > btcutil.MaxSatoshi {
			return 0, 0, refuse(CodeExtraOutput, "output %d: amount %d sat", j, to.Value)
		}
		sum += to.Value
		if sum > btcutil.MaxSatoshi {
			return 0, 0, refuse(CodeExtraOutput, "outputs worth %d sat, more than there are", sum)
		}
		if paid[j] {
			continue
		}
		if own(to.PkScript) {
			change += to.Value
			continue
		}
		if po := pkt.Outputs[j]; len(po.Bip32Derivation) != 0 || len(po.TaprootBip32Derivation) != 0 ||
			len(po.RedeemScript) != 0 || len(po.WitnessScript) != 0 {
			return 0, 0, refuse(CodeChange, "output %d: claimed as change, but script %x (%d sat) is not the wallet's own", j, to.PkScript, to.Value)
		}
		return 0, 0, refuse(CodeExtraOutput, "output %d: %d sat to %x, neither an intent's nor the wallet's", j, to.Value, to.PkScript)
	}
	return sum, change, nil
}

// EstimateVSize is the virtual size the transaction will have once
// signed, rounded up: its stripped size ×4, the 2 segwit marker and flag
// weight units, and each input's witness at its largest. A P2WPKH
// witness is a 72-byte signature (with its sighash byte) and a
// compressed key: 108 weight units. A P2WSH witness is the CHECKMULTISIG
// dummy, m such signatures and the witness script: the PSBT's witness
// script when it hashes to the spent script and is a multisig, else a
// 2-of-3 over compressed keys (254 weight units). Over-counting a
// signature makes the estimated rate at most a little low.
func EstimateVSize(pkt *psbt.Packet) int64 {
	weight := int64(pkt.UnsignedTx.SerializeSizeStripped())*4 + 2
	for i := range pkt.UnsignedTx.TxIn {
		weight += inputWitnessWeight(pkt.Inputs[i])
	}
	return (weight + 3) / 4
}

func inputWitnessWeight(pi psbt.PInput) int64 {
	var script []byte
	if pi.WitnessUtxo != nil {
		script = pi.WitnessUtxo.PkScript
	}
	if txscript.GetScriptClass(script) == txscript.WitnessV0PubKeyHashTy {
		return p2wpkhWitness
	}
	m, scriptLen := 2, multisig2of3Script
	if ws := pi.WitnessScript; len(ws) != 0 && len(script) == 34 {
		h := sha256.Sum256(ws)
		if bytes.Equal(h[:], script[2:]) && txscript.GetScriptClass(ws) == txscript.MultiSigTy {
			if _, req, err := txscript.CalcMultiSigStats(ws); err == nil {
				m, scriptLen = req, len(ws)
			}
		}
	}
	return int64(1 + 1 + m*(1+sigLen) + wire.VarIntSerializeSize(uint64(scriptLen)) + scriptLen)
}
