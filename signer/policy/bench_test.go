package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

// BenchmarkCheckQuorum: the signing stage's re-check of a 4-of-5 quorum
// (the default policy's above-5m rule: 4 of security and finance, at
// least one of each) over four signed approvals. Every approval is
// verified in full (the intent's canonical hash, the approval's signed
// bytes, Ed25519), then the votes are counted.
func BenchmarkCheckQuorum(b *testing.B) {
	as, keys := testApprovers(b)
	pol, err := Default(as)
	require.NoError(b, err)
	terms, ok := pol.Terms("above-5m")
	require.True(b, ok)
	require.Equal(b, 4, terms.N)
	in := testIntent()
	in.Rule, in.Policy = "above-5m", pol.Hash()
	s := signer{tb: b, keys: keys, in: in}
	approvals := []intent.Approval{s.sign("alice", intent.Approve, time.Minute), s.sign("bob", intent.Approve, 2*time.Minute),
		s.sign("dave", intent.Approve, 3*time.Minute), s.sign("erin", intent.Approve, 4*time.Minute)}
	now := in.Requested.Add(5 * time.Minute)
	tl := CheckQuorum(terms, as, &in, approvals, now)
	require.True(b, tl.Met, "%+v", tl)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !CheckQuorum(terms, as, &in, approvals, now).Met {
			b.Fatal("quorum not met")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quorums/s")
	b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "approvals/s")
}
