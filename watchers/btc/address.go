package btc

import "github.com/cordonhq/cordon/internal/address"

// Script types of outputs. The names are short forms of Bitcoin Core's
// (pubkeyhash, scripthash, witness_v0_keyhash, witness_v0_scripthash,
// witness_v1_taproot, witness_unknown, pubkey, multisig, nulldata,
// nonstandard).
const (
	ScriptP2PKH          = address.ScriptP2PKH
	ScriptP2SH           = address.ScriptP2SH
	ScriptP2WPKH         = address.ScriptP2WPKH
	ScriptP2WSH          = address.ScriptP2WSH
	ScriptP2TR           = address.ScriptP2TR
	ScriptWitnessUnknown = address.ScriptWitnessUnknown
	ScriptP2PK           = address.ScriptP2PK
	ScriptMultisig       = address.ScriptMultisig
	ScriptOpReturn       = address.ScriptOpReturn
	ScriptNonStandard    = address.ScriptNonStandard
)

// ClassifyScript returns an output script's type and the address it pays,
// encoded for net ("" when the script has no address form). P2PK outputs
// are given the P2PKH address of their key, as block explorers show them.
func ClassifyScript(script []byte, net *Network) (typ, addr string) {
	return address.ClassifyScript(script, net)
}

func appendClassify(dst, script []byte, net *Network) (string, []byte) {
	return address.AppendClassify(dst, script, net)
}
