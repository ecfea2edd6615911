// Package sdk is the public contract between cordon and its signer
// plugins: the types a plugin implements and the host calls. A plugin is
// its own binary, started by cordon's plugin host (signer/pluginhost)
// over hashicorp/go-plugin; its configuration comes as command-line
// arguments from cordon's config, never from the environment (the host
// passes none of its own on), and secrets such as PINs by file.
//
// Keys are secp256k1. A signature is over a 32-byte digest the plugin
// never derives itself: the host computes it from a transaction the
// second risk layer checked. The request carries the intents and their
// approvals so that a plugin may check them on its own and refuse.
package sdk

import (
	"context"
	"errors"
)

// Capabilities a plugin declares in its Description.
const (
	// CapSign: Sign produces a whole signature with one key.
	CapSign = "sign"
	// CapCosign: the plugin holds one share of a threshold key and takes
	// part in a signing session through Cosign.
	CapCosign = "cosign"
)

// CurveSecp256k1 is the only curve of this contract.
const CurveSecp256k1 = "secp256k1"

// KeyInfo describes one key a plugin holds (for a cosigner, the group's
// key it holds a share of).
type KeyInfo struct {
	// ID names the key within the plugin: what cordon's config refers to.
	ID string
	// Curve is CurveSecp256k1.
	Curve string
	// PublicKey is the 33-byte compressed SEC1 public key.
	PublicKey []byte
	// Networks the plugin signs for with this key (empty: any it allows).
	Networks []string
}

// Description is what a plugin says of itself.
type Description struct {
	// Name and Version of the plugin (e.g. "devkey", "0.1.0").
	Name    string
	Version string
	// Capabilities: CapSign, CapCosign.
	Capabilities []string
	Keys         []KeyInfo
}

// Authorization is one withdrawal a signature serves: what was approved
// and by whom. A transaction may serve several (a Bitcoin batch).
type Authorization struct {
	// Withdrawal is cordon's id (wd_…).
	Withdrawal string
	// Intent is the intent's canonical bytes (RFC 8785) and IntentHash
	// their hex SHA-256: what the approvers signed.
	Intent     []byte
	IntentHash string
	// Approvals are the signed approvals, each the JSON the gate took.
	Approvals [][]byte
}

// SignContext says what a digest is for.
type SignContext struct {
	// Chain and Network of the transaction ("btc"/"eth", "mainnet"…).
	Chain   string
	Network string
	// TxID is the unsigned transaction's id (Bitcoin txid, hex) or
	// signing hash (Ethereum, hex); Input the input signed (Bitcoin), 0
	// for Ethereum.
	TxID  string
	Input int
	// Authorizations are the withdrawals the transaction carries out.
	Authorizations []Authorization
}

// SignRequest asks for one signature.
type SignRequest struct {
	KeyID string
	// Digest is the 32 bytes to sign (a BIP-143 sighash, an EIP-1559
	// signing hash).
	Digest  [32]byte
	Context SignContext
}

// Signature is a secp256k1 ECDSA signature: S is in the lower half of
// the group order (low-S, as Bitcoin's standardness and Ethereum's
// homestead rules require) and V the recovery id (0 or 1) with which
// the public key is recovered from Digest, R and S.
type Signature struct {
	R, S [32]byte
	V    byte
}

// Signer is what every plugin implements.
type Signer interface {
	Describe(ctx context.Context) (Description, error)
	// PublicKey is the 33-byte compressed key of keyID.
	PublicKey(ctx context.Context, keyID string) ([]byte, error)
	// Sign signs req.Digest with req.KeyID, or refuses.
	Sign(ctx context.Context, req SignRequest) (Signature, error)
}

// CosignRequest opens one party's side of a threshold signing session.
type CosignRequest struct {
	// Session is fresh for every signing (32 random bytes, hex): a
	// message of another session is refused.
	Session string
	KeyID   string
	Digest  [32]byte
	Context SignContext
	// Parties are the ids of the parties taking part (this one among
	// them), as the plugins' Descriptions and key shares name them.
	Parties []string
}

// PartyMessage is one protocol message between parties, routed by the
// host. The plugin authenticates its payloads itself (the host is only
// a router): a message from a party not in the session, or of another
// session, is refused.
type PartyMessage struct {
	Session string
	From    string
	// To names the recipients; empty means every other party.
	To      []string
	Payload []byte
}

// Channel carries one session's messages between a party and the host.
type Channel interface {
	Send(ctx context.Context, m PartyMessage) error
	Recv(ctx context.Context) (PartyMessage, error)
}

// Cosigner is implemented by a plugin with CapCosign: it runs its side
// of one session, sending and receiving through ch, and returns the
// group's signature once the session is complete.
type Cosigner interface {
	Cosign(ctx context.Context, req CosignRequest, ch Channel) (Signature, error)
}

// Errors a plugin returns; the host maps them across the process
// boundary so that errors.Is works on both sides.
var (
	// ErrUnknownKey: no such key in this plugin.
	ErrUnknownKey = errors.New("sdk: unknown key")
	// ErrRefused: the plugin refused to sign (its own policy, a network
	// it does not sign for, a context it does not accept).
	ErrRefused = errors.New("sdk: refused")
	// ErrBadRequest: a malformed request (a digest not 32 bytes, no key).
	ErrBadRequest = errors.New("sdk: bad request")
)
