package party

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// DefaultSessionTimeout bounds a signing session whose Share has no
// SessionTimeout.
const DefaultSessionTimeout = 60 * time.Second

// Session ids are hex of 16 to 64 bytes (the host makes 32).
const (
	minSessionBytes = 16
	maxSessionBytes = 64
)

var _ sdk.Cosigner = (*Share)(nil)

// cosignOptions change one Cosign call.
type cosignOptions struct {
	timeout time.Duration
	hook    wireHook
}

// Cosign runs this share's side of a 2-of-3 signing session: the parties
// are req.Parties (exactly t+1, this one among them), the messages go
// through ch, and the result is the group's low-S signature of
// req.Digest with V the recovery id that recovers the group key. The
// session ends with an error on any refused message, and when ctx ends
// or DefaultSessionTimeout passes (CosignTimeout sets its own),
// whichever is first.
func (s *Share) Cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel) (sdk.Signature, error) {
	return s.cosign(ctx, req, ch, cosignOptions{timeout: DefaultSessionTimeout})
}

// CosignTimeout is Cosign with its own session timeout.
func (s *Share) CosignTimeout(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel, timeout time.Duration) (sdk.Signature, error) {
	return s.cosign(ctx, req, ch, cosignOptions{timeout: timeout})
}

func (s *Share) cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel, o cosignOptions) (sdk.Signature, error) {
	indices, err := s.checkRequest(req)
	if err != nil {
		return sdk.Signature{}, err
	}
	if o.timeout <= 0 {
		o.timeout = DefaultSessionTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, ErrTimeout)
	defer cancel()

	pids := sortedPartyIDs(s.Parties, indices)
	var self *tss.PartyID
	peers := map[string]ed25519.PublicKey{}
	paillierN := map[string]*big.Int{}
	for _, i := range indices {
		id := s.Parties[i]
		paillierN[id] = s.Data.PaillierPKs[i].N
		if i != s.Index {
			peers[id] = s.AuthKeys[i]
		}
	}
	for _, p := range pids {
		if p.Id == s.ID {
			self = p
		}
	}
	// ECDSA takes the digest as an integer mod q; tss-lib refuses one of q
	// or more, and e and e mod q give the same signature.
	m := new(big.Int).SetBytes(req.Digest[:])
	m.Mod(m, curveQ)
	params := tss.NewParameters(tss.S256(), tss.NewPeerContext(pids), self, len(pids), s.Threshold)
	out := make(chan tss.Message, outBuffer)
	end := make(chan *common.SignatureData, 1)
	p := signing.NewLocalParty(m, params, s.Data, out, end, 32)
	t := &transport{
		ch:       ch,
		sess:     newSession(req.Session, signingBinding(req.KeyID, req.Digest, s.Parties, indices), s.ID, s.authKey, peers),
		boundary: newBoundary(protoSigning, s.ID, paillierN),
		ids:      byID(pids),
		hook:     o.hook,
	}
	data, err := runParty(ctx, p, out, end, t)
	if err != nil {
		return sdk.Signature{}, fmt.Errorf("threshold: party %s, session %s: %w", s.ID, req.Session, err)
	}
	sig, err := finishSignature(data.GetR(), data.GetS(), req.Digest, s.GroupKey)
	if err != nil {
		return sdk.Signature{}, fmt.Errorf("threshold: party %s, session %s: %w", s.ID, req.Session, err)
	}
	return sig, nil
}

// signingBinding binds a signing session's envelopes to the key, the
// digest and the parties (in key order).
func signingBinding(keyID string, digest [32]byte, ids []string, indices []int) [BindingSize]byte {
	fields := make([][]byte, 0, 2+len(indices))
	fields = append(fields, []byte(keyID), digest[:])
	for _, i := range indices {
		fields = append(fields, []byte(ids[i]))
	}
	return bind("cordon/threshold/sign/v1", fields...)
}

// checkRequest validates req against the share and returns the signing
// parties' indices in s.Parties, ascending.
func (s *Share) checkRequest(req sdk.CosignRequest) ([]int, error) {
	if req.KeyID != s.KeyID {
		return nil, fmt.Errorf("%w: threshold: key %q is not this share's (%q)", sdk.ErrUnknownKey, req.KeyID, s.KeyID)
	}
	sid, err := hex.DecodeString(req.Session)
	if err != nil || len(sid) < minSessionBytes || len(sid) > maxSessionBytes || len(req.Session) > MaxSessionLen {
		return nil, fmt.Errorf("%w: threshold: session id must be %d to %d bytes of hex", sdk.ErrBadRequest, minSessionBytes, maxSessionBytes)
	}
	if len(req.Parties) != s.Threshold+1 {
		return nil, fmt.Errorf("%w: threshold: a session has exactly %d parties, not %d", sdk.ErrRefused, s.Threshold+1, len(req.Parties))
	}
	indices := make([]int, 0, len(req.Parties))
	for _, id := range req.Parties {
		i := slices.Index(s.Parties, id)
		if i < 0 {
			return nil, fmt.Errorf("%w: threshold: party %q is not of this key", sdk.ErrRefused, id)
		}
		if slices.Contains(indices, i) {
			return nil, fmt.Errorf("%w: threshold: party %q twice", sdk.ErrRefused, id)
		}
		indices = append(indices, i)
	}
	if !slices.Contains(indices, s.Index) {
		return nil, fmt.Errorf("%w: threshold: this party (%s) is not in the session's parties %q", sdk.ErrRefused, s.ID, req.Parties)
	}
	slices.Sort(indices)
	return indices, nil
}

// ErrSignature is a session's result that is no valid signature of the
// group key.
var ErrSignature = errors.New("threshold: the session's signature does not verify against the group key")

// finishSignature makes the sdk's signature of r, s: S low (n - S if S >
// n/2), and V the recovery id (0 or 1) with which RecoverCompact gives
// the group key. The signature is verified before it is returned.
func finishSignature(rb, sb []byte, digest [32]byte, groupKey []byte) (sdk.Signature, error) {
	var out sdk.Signature
	if len(rb) == 0 || len(rb) > 32 || len(sb) == 0 || len(sb) > 32 {
		return out, fmt.Errorf("%w: r or s of %d/%d bytes", ErrSignature, len(rb), len(sb))
	}
	var r, sc btcec.ModNScalar
	var rbuf, sbuf [32]byte
	copy(rbuf[32-len(rb):], rb)
	copy(sbuf[32-len(sb):], sb)
	if r.SetBytes(&rbuf) != 0 || sc.SetBytes(&sbuf) != 0 || r.IsZero() || sc.IsZero() {
		return out, fmt.Errorf("%w: r or s not in [1, n)", ErrSignature)
	}
	if sc.IsOverHalfOrder() {
		sc.Negate()
	}
	pub, err := btcec.ParsePubKey(groupKey)
	if err != nil {
		return out, fmt.Errorf("threshold: group key: %w", err)
	}
	if !ecdsa.NewSignature(&r, &sc).Verify(digest[:], pub) {
		return out, ErrSignature
	}
	out.R, out.S = r.Bytes(), sc.Bytes()
	for v := range byte(2) {
		compact := make([]byte, 0, 65)
		compact = append(compact, 27+v+4) // compressed key
		compact = append(compact, out.R[:]...)
		compact = append(compact, out.S[:]...)
		got, _, err := ecdsa.RecoverCompact(compact, digest[:])
		if err == nil && got.IsEqual(pub) {
			out.V = v
			return out, nil
		}
	}
	return out, fmt.Errorf("%w: no recovery id 0 or 1 recovers it", ErrSignature)
}
