package party

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/modproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/mta"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
)

// The boundary checks, as a BoundaryError names them.
const (
	// CheckMessage: the message is of this protocol, its broadcast flag
	// the one its type requires, it passes tss-lib's ValidateBasic, and
	// it is the sender's first of its type.
	CheckMessage = "message"
	// CheckFeldmanVSS: keygen round 2's decommitment of the Feldman
	// polynomial commitments holds exactly t+1 points: 1 + 2(t+1)
	// integers (the commitment's randomness r, then x and y of each
	// point). Upstream tss-lib 843de68 (vss.Share.Verify: len(vs) ==
	// threshold+1); v2.0.2 indexes vs without looking at its length.
	CheckFeldmanVSS = "feldman_vss_commitments"
	// CheckModProof: keygen round 2's Paillier-Blum modulus proof is
	// present (tss-lib accepts none under NoProofMod) and its W is in
	// Z*_N: 0 < W < N and gcd(W, N) = 1, N the sender's Paillier modulus
	// from its round-1 message. Upstream tss-lib c84c096; in v2.0.2 a W
	// sharing a factor with N has Jacobi symbol 0 and passes as a
	// non-residue, which lets a modulus that is not a Blum integer pass.
	CheckModProof = "modproof_w"
	// CheckMtARange: signing round 1's ciphertext and Alice's range proof
	// (verified by tss-lib against the sender's Paillier key): c in
	// Z*_{N^2}; s in Z*_N and s != 1; z != 1; s1 != s2 (upstream
	// tss-lib 5d01446); q <= s1 <= q^3 and s2 >= q.
	CheckMtARange = "mta_range_proof"
	// CheckMtABob: signing round 2's ciphertexts and Bob's two proofs
	// (verified by tss-lib against our Paillier key): c1, c2 in
	// Z*_{N^2}; exactly 10 and 12 parts; for each proof s in Z*_N and
	// s != 1, z != 1, v in Z*_{N^2}, q <= s1 <= q^3, q <= t1 <= q^7 (the
	// Alice checks upstream added, carried over to Bob's proofs).
	CheckMtABob = "mta_proof_bob"
)

// ErrBoundary is wrapped by every BoundaryError.
var ErrBoundary = errors.New("threshold: message refused at the boundary")

// BoundaryError is a tss message refused before tss-lib saw it.
type BoundaryError struct {
	Check  string // one of the Check constants
	From   string // the sender's party id
	Type   string // the tss message type
	Reason string
}

// Error names the check, the message type, the sender and the reason.
func (e *BoundaryError) Error() string {
	return fmt.Sprintf("threshold: boundary check %s refused %s from %q: %s", e.Check, e.Type, e.From, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBoundary) hold.
func (e *BoundaryError) Unwrap() error { return ErrBoundary }

type protocol int

const (
	protoKeygen protocol = iota
	protoSigning
)

var (
	one = big.NewInt(1)
	// curveQ is secp256k1's group order, q3 and q7 its powers.
	curveQ = tss.S256().Params().N
	q3     = new(big.Int).Exp(curveQ, big.NewInt(3), nil)
	q7     = new(big.Int).Exp(curveQ, big.NewInt(7), nil)
)

// boundary checks one party's incoming tss messages of one session.
type boundary struct {
	proto     protocol
	threshold int
	self      string
	// paillierN is each party's Paillier modulus: in keygen from its
	// round-1 message, in signing from the save data.
	paillierN map[string]*big.Int
	seen      map[string]map[string]bool // sender -> message types
}

func newBoundary(p protocol, self string, paillierN map[string]*big.Int) *boundary {
	if paillierN == nil {
		paillierN = map[string]*big.Int{}
	}
	return &boundary{proto: p, threshold: Threshold, self: self, paillierN: paillierN, seen: map[string]map[string]bool{}}
}

// check runs every check on msg from the party from.
func (b *boundary) check(from string, msg tss.ParsedMessage) error {
	refuse := func(check, format string, a ...any) error {
		return &BoundaryError{Check: check, From: from, Type: msg.Type(), Reason: fmt.Sprintf(format, a...)}
	}
	wantBroadcast, ok := b.kind(msg.Content())
	if !ok {
		return refuse(CheckMessage, "not a message of this protocol")
	}
	if msg.IsBroadcast() != wantBroadcast {
		return refuse(CheckMessage, "broadcast flag %v, the type requires %v", msg.IsBroadcast(), wantBroadcast)
	}
	if !msg.ValidateBasic() {
		return refuse(CheckMessage, "fails tss-lib's basic validation")
	}
	if b.seen[from][msg.Type()] {
		return refuse(CheckMessage, "a second message of this type from the sender")
	}
	var err error
	switch c := msg.Content().(type) {
	case *keygen.KGRound1Message:
		n := c.UnmarshalPaillierPK().N
		if n.BitLen() != 2048 || n.Bit(0) == 0 {
			return refuse(CheckMessage, "Paillier modulus of %d bits (or even)", n.BitLen())
		}
		b.paillierN[from] = n
	case *keygen.KGRound2Message2:
		err = b.checkKeygenDecommit(from, c, refuse)
	case *signing.SignRound1Message1:
		err = b.checkAlice(from, c, refuse)
	case *signing.SignRound2Message:
		err = b.checkBob(c, refuse)
	}
	if err != nil {
		return err
	}
	if b.seen[from] == nil {
		b.seen[from] = map[string]bool{}
	}
	b.seen[from][msg.Type()] = true
	return nil
}

// kind reports whether content is of this protocol and whether its type
// is a broadcast.
func (b *boundary) kind(content tss.MessageContent) (broadcast, ok bool) {
	switch b.proto {
	case protoKeygen:
		switch content.(type) {
		case *keygen.KGRound1Message, *keygen.KGRound2Message2, *keygen.KGRound3Message:
			return true, true
		case *keygen.KGRound2Message1:
			return false, true
		}
	case protoSigning:
		switch content.(type) {
		case *signing.SignRound1Message2, *signing.SignRound3Message, *signing.SignRound4Message,
			*signing.SignRound5Message, *signing.SignRound6Message, *signing.SignRound7Message,
			*signing.SignRound8Message, *signing.SignRound9Message:
			return true, true
		case *signing.SignRound1Message1, *signing.SignRound2Message:
			return false, true
		}
	}
	return false, false
}

type refuseFunc func(check, format string, a ...any) error

func (b *boundary) checkKeygenDecommit(from string, c *keygen.KGRound2Message2, refuse refuseFunc) error {
	// (a) Feldman VSS: D = (r, v0.x, v0.y, ..., vt.x, vt.y).
	if want, got := 1+2*(b.threshold+1), len(c.GetDeCommitment()); got != want {
		return refuse(CheckFeldmanVSS, "the decommitment holds %d integers, t+1 = %d points make %d", got, b.threshold+1, want)
	}
	// (b) modproof.
	n, ok := b.paillierN[from]
	if !ok {
		return refuse(CheckModProof, "no round-1 message (Paillier modulus) from the sender before its modulus proof")
	}
	parts := c.GetModProof()
	if len(parts) != modproof.ProofModBytesParts {
		return refuse(CheckModProof, "a modulus proof of %d parts, want %d", len(parts), modproof.ProofModBytesParts)
	}
	pf, err := c.UnmarshalModProof()
	if err != nil {
		return refuse(CheckModProof, "%v", err)
	}
	if pf.W.Sign() <= 0 || pf.W.Cmp(n) >= 0 {
		return refuse(CheckModProof, "W is not in (0, N)")
	}
	if new(big.Int).GCD(nil, nil, pf.W, n).Cmp(one) != 0 {
		return refuse(CheckModProof, "gcd(W, N) != 1")
	}
	return nil
}

// inZnStar reports whether 0 < x < n and gcd(x, m) = 1.
func inZnStar(x, n, m *big.Int) bool {
	return x.Sign() > 0 && x.Cmp(n) < 0 && new(big.Int).GCD(nil, nil, x, m).Cmp(one) == 0
}

func (b *boundary) checkAlice(from string, c *signing.SignRound1Message1, refuse refuseFunc) error {
	n, ok := b.paillierN[from]
	if !ok {
		return refuse(CheckMtARange, "no Paillier modulus for the sender")
	}
	n2 := new(big.Int).Mul(n, n)
	if !inZnStar(c.UnmarshalC(), n2, n) {
		return refuse(CheckMtARange, "the ciphertext c is not in Z*_{N^2}")
	}
	pf, err := c.UnmarshalRangeProofAlice()
	if err != nil {
		return refuse(CheckMtARange, "%v", err)
	}
	switch {
	case !inZnStar(pf.S, n, n):
		return refuse(CheckMtARange, "s is not in Z*_N")
	case pf.S.Cmp(one) == 0:
		return refuse(CheckMtARange, "s == 1")
	case pf.Z.Cmp(one) == 0:
		return refuse(CheckMtARange, "z == 1")
	case pf.S1.Cmp(pf.S2) == 0:
		return refuse(CheckMtARange, "s1 == s2")
	case pf.S1.Cmp(curveQ) < 0 || pf.S1.Cmp(q3) > 0:
		return refuse(CheckMtARange, "s1 is not in [q, q^3]")
	case pf.S2.Cmp(curveQ) < 0:
		return refuse(CheckMtARange, "s2 < q")
	}
	return nil
}

func (b *boundary) checkBob(c *signing.SignRound2Message, refuse refuseFunc) error {
	n, ok := b.paillierN[b.self]
	if !ok {
		return refuse(CheckMtABob, "no Paillier modulus of our own")
	}
	n2 := new(big.Int).Mul(n, n)
	if !inZnStar(new(big.Int).SetBytes(c.GetC1()), n2, n) {
		return refuse(CheckMtABob, "c1 is not in Z*_{N^2}")
	}
	if !inZnStar(new(big.Int).SetBytes(c.GetC2()), n2, n) {
		return refuse(CheckMtABob, "c2 is not in Z*_{N^2}")
	}
	if len(c.GetProofBob()) != mta.ProofBobBytesParts {
		return refuse(CheckMtABob, "Bob's proof has %d parts, want %d", len(c.GetProofBob()), mta.ProofBobBytesParts)
	}
	if len(c.GetProofBobWc()) != mta.ProofBobWCBytesParts {
		return refuse(CheckMtABob, "Bob's proof with check has %d parts, want %d", len(c.GetProofBobWc()), mta.ProofBobWCBytesParts)
	}
	pf, err := c.UnmarshalProofBob()
	if err != nil {
		return refuse(CheckMtABob, "%v", err)
	}
	pfwc, err := c.UnmarshalProofBobWC(tss.S256())
	if err != nil {
		return refuse(CheckMtABob, "proof with check: %v", err)
	}
	for _, p := range []struct {
		name string
		pf   *mta.ProofBob
	}{{"proof", pf}, {"proof with check", pfwc.ProofBob}} {
		switch {
		case !inZnStar(p.pf.S, n, n):
			return refuse(CheckMtABob, "%s: s is not in Z*_N", p.name)
		case p.pf.S.Cmp(one) == 0:
			return refuse(CheckMtABob, "%s: s == 1", p.name)
		case p.pf.Z.Cmp(one) == 0:
			return refuse(CheckMtABob, "%s: z == 1", p.name)
		case !inZnStar(p.pf.V, n2, n):
			return refuse(CheckMtABob, "%s: v is not in Z*_{N^2}", p.name)
		case p.pf.S1.Cmp(curveQ) < 0 || p.pf.S1.Cmp(q3) > 0:
			return refuse(CheckMtABob, "%s: s1 is not in [q, q^3]", p.name)
		case p.pf.T1.Cmp(curveQ) < 0 || p.pf.T1.Cmp(q7) > 0:
			return refuse(CheckMtABob, "%s: t1 is not in [q, q^7]", p.name)
		}
	}
	return nil
}
