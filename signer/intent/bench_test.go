package intent

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchApprovals are n approvals of n distinct intents, each signed by
// one of five approvers (alice, bob, carol in security; dave, erin in
// finance), with the approver list they verify against.
func benchApprovals(tb testing.TB, n int) (*Approvers, []Intent, []Approval) {
	tb.Helper()
	names := []string{"alice", "bob", "carol", "dave", "erin"}
	var list []Approver
	keys := make([]ed25519.PrivateKey, len(names))
	for i, name := range names {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, name)
		keys[i] = ed25519.NewKeyFromSeed(seed)
		list = append(list, Approver{Name: name, Groups: []string{[]string{"security", "security", "security", "finance", "finance"}[i]},
			Key: base64.StdEncoding.EncodeToString(keys[i].Public().(ed25519.PublicKey))})
	}
	as, err := NewApprovers("gate.approvers", list)
	require.NoError(tb, err)
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 123, time.UTC)
	ins := make([]Intent, n)
	aps := make([]Approval, n)
	for i := range n {
		ins[i] = Intent{ID: fmt.Sprintf("wd_%024x", i), Request: fmt.Sprintf("ex-%d", i), Requester: "exchange", Account: fmt.Sprintf("acct-%d", i%1000),
			Chain: "eth", Network: "mainnet", Asset: Native, Amount: fmt.Sprintf("%d000000000000000", 1+i%5000),
			Destination: fmt.Sprintf("0x%040x", 0xd00000+i), Rule: "below-1m", Policy: "9f" + fmt.Sprintf("%062x", i), Requested: t0.Add(time.Duration(i) * time.Millisecond)}
		h, err := ins[i].Hash()
		require.NoError(tb, err)
		aps[i] = Approval{Withdrawal: ins[i].ID, Intent: h, Approver: names[i%len(names)], Decision: Approve, Signed: ins[i].Requested.Add(time.Minute)}
		aps[i].Sign(keys[i%len(names)])
	}
	return as, ins, aps
}

// BenchmarkApprovalVerify is Approval.Verify in full, as the gate and
// the signing stage call it: the approval's form, the intent's canonical
// bytes (RFC 8785) and SHA-256 compared with what was signed, the
// approval's own canonical bytes, and the Ed25519 signature against the
// approver list. Each iteration verifies another intent's approval.
// Run it with -cpu 1: approvals/s is one core's rate.
func BenchmarkApprovalVerify(b *testing.B) {
	as, ins, aps := benchApprovals(b, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % len(aps)
		if _, err := aps[j].Verify(as, &ins[j]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}

// BenchmarkApprovalVerifyParts splits BenchmarkApprovalVerify's cost:
// the intent's hash, the approval's signed bytes (both RFC 8785 through
// encoding/json and internal/jcs) and the bare Ed25519 verification.
func BenchmarkApprovalVerifyParts(b *testing.B) {
	as, ins, aps := benchApprovals(b, 1024)
	b.Run("IntentHash", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, err := ins[i%len(ins)].Hash(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SignedBytes", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			_ = aps[i%len(aps)].SignedBytes()
		}
	})
	b.Run("Ed25519", func(b *testing.B) {
		msgs := make([][]byte, len(aps))
		sigs := make([][]byte, len(aps))
		pubs := make([]ed25519.PublicKey, len(aps))
		for i := range aps {
			msgs[i] = aps[i].SignedBytes()
			sigs[i], _ = base64.StdEncoding.DecodeString(aps[i].Signature)
			ap, _ := as.Get(aps[i].Approver)
			raw, _ := base64.StdEncoding.DecodeString(ap.Key)
			pubs[i] = raw
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			j := i % len(aps)
			if !ed25519.Verify(pubs[j], msgs[j], sigs[j]) {
				b.Fatal("bad signature")
			}
		}
	})
}
