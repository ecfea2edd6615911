package sdk

import (
	"fmt"

	signerpb "github.com/cordonhq/cordon/plugins/sdk/proto"
)

func descriptionToPB(d Description) *signerpb.Description {
	out := &signerpb.Description{Name: d.Name, Version: d.Version, Capabilities: d.Capabilities}
	for _, k := range d.Keys {
		out.Keys = append(out.Keys, &signerpb.KeyInfo{Id: k.ID, Curve: k.Curve, PublicKey: k.PublicKey, Networks: k.Networks})
	}
	return out
}

func descriptionFromPB(d *signerpb.Description) Description {
	out := Description{Name: d.GetName(), Version: d.GetVersion(), Capabilities: d.GetCapabilities()}
	for _, k := range d.GetKeys() {
		out.Keys = append(out.Keys, KeyInfo{ID: k.GetId(), Curve: k.GetCurve(), PublicKey: k.GetPublicKey(), Networks: k.GetNetworks()})
	}
	return out
}

func contextToPB(c SignContext) *signerpb.SignContext {
	out := &signerpb.SignContext{Chain: c.Chain, Network: c.Network, TxId: c.TxID, Input: int64(c.Input)}
	for _, a := range c.Authorizations {
		out.Authorizations = append(out.Authorizations, &signerpb.Authorization{
			Withdrawal: a.Withdrawal, Intent: a.Intent, IntentHash: a.IntentHash, Approvals: a.Approvals,
		})
	}
	return out
}

func contextFromPB(c *signerpb.SignContext) SignContext {
	out := SignContext{Chain: c.GetChain(), Network: c.GetNetwork(), TxID: c.GetTxId(), Input: int(c.GetInput())}
	for _, a := range c.GetAuthorizations() {
		out.Authorizations = append(out.Authorizations, Authorization{
			Withdrawal: a.GetWithdrawal(), Intent: a.GetIntent(), IntentHash: a.GetIntentHash(), Approvals: a.GetApprovals(),
		})
	}
	return out
}

func digestFromPB(b []byte) ([32]byte, error) {
	var d [32]byte
	if len(b) != len(d) {
		return d, fmt.Errorf("%w: digest is %d bytes, not 32", ErrBadRequest, len(b))
	}
	copy(d[:], b)
	return d, nil
}

func signRequestFromPB(r *signerpb.SignRequest) (SignRequest, error) {
	d, err := digestFromPB(r.GetDigest())
	if err != nil {
		return SignRequest{}, err
	}
	return SignRequest{KeyID: r.GetKeyId(), Digest: d, Context: contextFromPB(r.GetContext())}, nil
}

func cosignRequestFromPB(r *signerpb.CosignRequest) (CosignRequest, error) {
	d, err := digestFromPB(r.GetDigest())
	if err != nil {
		return CosignRequest{}, err
	}
	return CosignRequest{
		Session: r.GetSession(), KeyID: r.GetKeyId(), Digest: d,
		Context: contextFromPB(r.GetContext()), Parties: r.GetParties(),
	}, nil
}

func signatureToPB(s Signature) *signerpb.Signature {
	return &signerpb.Signature{R: s.R[:], S: s.S[:], V: uint32(s.V)}
}

// signatureFromPB checks the shape only; the host verifies the signature
// against the key itself before using it.
func signatureFromPB(s *signerpb.Signature) (Signature, error) {
	var out Signature
	if len(s.GetR()) != 32 || len(s.GetS()) != 32 || s.GetV() > 1 {
		return out, fmt.Errorf("plugin: malformed signature (r %d bytes, s %d bytes, v %d)", len(s.GetR()), len(s.GetS()), s.GetV())
	}
	copy(out.R[:], s.GetR())
	copy(out.S[:], s.GetS())
	out.V = byte(s.GetV())
	return out, nil
}

func partyToPB(m PartyMessage) *signerpb.PartyMessage {
	return &signerpb.PartyMessage{Session: m.Session, From: m.From, To: m.To, Payload: m.Payload}
}

func partyFromPB(m *signerpb.PartyMessage) PartyMessage {
	return PartyMessage{Session: m.GetSession(), From: m.GetFrom(), To: m.GetTo(), Payload: m.GetPayload()}
}
