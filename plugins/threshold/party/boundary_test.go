package party

import (
	"math/big"
	"sync"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/stretchr/testify/require"
)

// keygenBoundary is p0's boundary in keygen, having seen p1's honest
// round-1 message.
func keygenBoundary(t *testing.T, f *fixture) *boundary {
	t.Helper()
	pids := sortedPartyIDs(DefaultIDs, []int{0, 1, 2})
	b := newBoundary(protoKeygen, "p0", nil)
	require.NoError(t, b.check("p1", parsed(t, find(t, f.keygen, typeKGR1, "p1", ""), pids)))
	return b
}

func TestBoundaryKeygenDecommitment(t *testing.T) {
	f := shares(t)
	pids := sortedPartyIDs(DefaultIDs, []int{0, 1, 2})
	honest := find(t, f.keygen, typeKGR2M2, "p1", "")
	p1P := f.preparams[1].PaillierSK.P
	p1N := f.preparams[1].PaillierSK.N
	for _, tc := range []struct {
		name   string
		edit   func(*keygen.KGRound2Message2)
		check  string
		reason string
	}{
		{"honest", func(*keygen.KGRound2Message2) {}, "", ""},
		// (a) Feldman VSS: t+1 = 2 points are 1 + 4 integers.
		{"one more point", func(m *keygen.KGRound2Message2) {
			m.DeCommitment = append(m.DeCommitment, m.DeCommitment[1], m.DeCommitment[2])
		}, CheckFeldmanVSS, "holds 7 integers"},
		{"one point fewer", func(m *keygen.KGRound2Message2) { m.DeCommitment = m.DeCommitment[:3] }, CheckFeldmanVSS, "holds 3 integers"},
		{"no points", func(m *keygen.KGRound2Message2) { m.DeCommitment = m.DeCommitment[:1] }, CheckFeldmanVSS, "holds 1 integers"},
		// (b) modproof: W sharing the factor P with N (upstream's attack).
		{"W = P", func(m *keygen.KGRound2Message2) { m.ModProof[0] = p1P.Bytes() }, CheckModProof, "gcd(W, N) != 1"},
		{"W = 2P", func(m *keygen.KGRound2Message2) {
			m.ModProof[0] = new(big.Int).Lsh(p1P, 1).Bytes()
		}, CheckModProof, "gcd(W, N) != 1"},
		{"W = N", func(m *keygen.KGRound2Message2) { m.ModProof[0] = p1N.Bytes() }, CheckModProof, "not in (0, N)"},
		{"no modulus proof", func(m *keygen.KGRound2Message2) { m.ModProof = nil }, CheckModProof, "0 parts"},
		{"a short modulus proof", func(m *keygen.KGRound2Message2) { m.ModProof = m.ModProof[:100] }, CheckModProof, "100 parts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := honest
			r.wire = tamper(t, honest.wire, tc.edit)
			err := keygenBoundary(t, f).check("p1", parsed(t, r, pids))
			if tc.check == "" {
				require.NoError(t, err)
				return
			}
			var be *BoundaryError
			require.ErrorAs(t, err, &be)
			require.ErrorIs(t, err, ErrBoundary)
			require.Equal(t, tc.check, be.Check)
			require.Equal(t, "p1", be.From)
			require.Contains(t, err.Error(), tc.reason)
			require.Contains(t, err.Error(), tc.check)
		})
	}
}

func TestBoundaryModProofNeedsRoundOne(t *testing.T) {
	f := shares(t)
	pids := sortedPartyIDs(DefaultIDs, []int{0, 1, 2})
	b := newBoundary(protoKeygen, "p0", nil)
	err := b.check("p1", parsed(t, find(t, f.keygen, typeKGR2M2, "p1", ""), pids))
	var be *BoundaryError
	require.ErrorAs(t, err, &be)
	require.Equal(t, CheckModProof, be.Check)
}

func TestBoundaryMessageRules(t *testing.T) {
	f := shares(t)
	pids := sortedPartyIDs(DefaultIDs, []int{0, 1, 2})
	r1 := find(t, f.keygen, typeKGR1, "p1", "")

	b := keygenBoundary(t, f)
	err := b.check("p1", parsed(t, r1, pids))
	require.ErrorContains(t, err, "a second message of this type")

	p2p := r1
	p2p.broadcast = false
	err = newBoundary(protoKeygen, "p0", nil).check("p1", parsed(t, p2p, pids))
	require.ErrorContains(t, err, "broadcast flag false")

	// A keygen message in a signing session.
	err = newBoundary(protoSigning, "p0", nil).check("p1", parsed(t, r1, pids))
	require.ErrorContains(t, err, "not a message of this protocol")
}

var (
	signRecOnce sync.Once
	signRec     map[string][]recorded
)

// signingMessages records one honest p0+p1 signing session.
func signingMessages(t *testing.T, f *fixture) map[string][]recorded {
	t.Helper()
	signRecOnce.Do(func() {
		var mu sync.Mutex
		rec := map[string][]recorded{}
		hook := func(from string, to []string, broadcast bool, wire []byte) []byte {
			mu.Lock()
			defer mu.Unlock()
			rec[wireType(wire)] = append(rec[wireType(wire)], recorded{from: from, to: to, broadcast: broadcast, wire: wire})
			return wire
		}
		res := runSession(t, []*Share{&f.shares[0], &f.shares[1]}, []string{"p0", "p1"}, randomDigest(t), map[string]testParty{
			"p0": {opts: cosignOptions{hook: hook}}, "p1": {opts: cosignOptions{hook: hook}},
		})
		require.NoError(t, res["p0"].err)
		signRec = rec
	})
	require.NotNil(t, signRec)
	return signRec
}

func signingBoundary(f *fixture) *boundary {
	return newBoundary(protoSigning, "p0", map[string]*big.Int{
		"p0": f.shares[0].Data.PaillierPKs[0].N,
		"p1": f.shares[0].Data.PaillierPKs[1].N,
	})
}

func TestBoundaryRangeProofAlice(t *testing.T) {
	f := shares(t)
	pids := sortedPartyIDs(DefaultIDs, []int{0, 1})
	honest := find(t, signingMessages(t, f), typeSignR1M1, "p1", "p0")
	n := f.shares[0].Data.PaillierPKs[1].N // Alice's (p1's) modulus
	n2 := new(big.Int).Mul(n, n)
	// Range proof parts: z, u, w, s, s1, s2.
	set := func(i int, v *big.Int) func(*signing.SignRound1Message1) {
		return func(m *signing.SignRound1Message1) { m.RangeProofAlice[i] = v.Bytes() }
	}
	for _, tc := range []struct {
		name   string
		edit   func(*signing.SignRound1Message1)
		reason string
	}{
		{"honest", func(*signing.SignRound1Message1) {}, ""},
		{"s == 1", set(3, one), "s == 1"},
		{"z == 1", set(0, one), "z == 1"},
		{"s1 == s2", func(m *signing.SignRound1Message1) { m.RangeProofAlice[5] = m.RangeProofAlice[4] }, "s1 == s2"},
		{"s1 > q^3", set(4, new(big.Int).Add(q3, one)), "s1 is not in [q, q^3]"},
		{"s1 < q", set(4, big.NewInt(7)), "s1 is not in [q, q^3]"},
		{"s2 < q", set(5, big.NewInt(7)), "s2 < q"},
		{"s = N", set(3, n), "s is not in Z*_N"},
		{"s = a factor of N", set(3, f.preparams[1].PaillierSK.P), "s is not in Z*_N"},
		{"c = N", func(m *signing.SignRound1Message1) { m.C = n.Bytes() }, "not in Z*_{N^2}"},
		{"c = N^2", func(m *signing.SignRound1Message1) { m.C = n2.Bytes() }, "not in Z*_{N^2}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := honest
			r.wire = tamper(t, honest.wire, tc.edit)
			err := signingBoundary(f).check("p1", parsed(t, r, pids))
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			var be *BoundaryError
			require.ErrorAs(t, err, &be)
			require.Equal(t, CheckMtARange, be.Check)
			require.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestBoundaryProofBob(t *testing.T) {
	f := shares(t)
	pids := sortedPartyIDs(DefaultIDs, []int{0, 1})
	honest := find(t, signingMessages(t, f), typeSignR2, "p1", "p0")
	n := f.shares[0].Data.PaillierPKs[0].N // Alice's (our, p0's) modulus
	// Bob's proof parts: z, z', t, v, w, s, s1, s2, t1, t2 (+ u.x, u.y).
	for _, tc := range []struct {
		name   string
		edit   func(*signing.SignRound2Message)
		reason string
	}{
		{"honest", func(*signing.SignRound2Message) {}, ""},
		{"s == 1", func(m *signing.SignRound2Message) { m.ProofBob[5] = one.Bytes() }, "proof: s == 1"},
		{"z == 1 (with check)", func(m *signing.SignRound2Message) { m.ProofBobWc[0] = one.Bytes() }, "proof with check: z == 1"},
		{"s1 > q^3", func(m *signing.SignRound2Message) { m.ProofBob[6] = new(big.Int).Add(q3, one).Bytes() }, "s1 is not in [q, q^3]"},
		{"t1 > q^7", func(m *signing.SignRound2Message) { m.ProofBobWc[8] = new(big.Int).Add(q7, one).Bytes() }, "t1 is not in [q, q^7]"},
		{"v not in Z*_{N^2}", func(m *signing.SignRound2Message) { m.ProofBob[3] = n.Bytes() }, "v is not in Z*_{N^2}"},
		{"c1 = 0", func(m *signing.SignRound2Message) { m.C1 = []byte{0} }, "c1 is not in Z*_{N^2}"},
		{"c2 a multiple of N", func(m *signing.SignRound2Message) { m.C2 = new(big.Int).Lsh(n, 3).Bytes() }, "c2 is not in Z*_{N^2}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := honest
			r.wire = tamper(t, honest.wire, tc.edit)
			err := signingBoundary(f).check("p1", parsed(t, r, pids))
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			var be *BoundaryError
			require.ErrorAs(t, err, &be)
			require.Equal(t, CheckMtABob, be.Check)
			require.Contains(t, err.Error(), tc.reason)
		})
	}
}
