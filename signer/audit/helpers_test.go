package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/clock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKey is a fixed leader key (anyone can derive it: tests only).
func testKey(name string) *Key {
	seed := sha256.Sum256([]byte("cordon audit test key " + name))
	return KeyOf(ed25519.NewKeyFromSeed(seed[:]))
}

func trusted(tb testing.TB, ks ...*Key) *Keys {
	tb.Helper()
	pubs := make([]string, len(ks))
	for i, k := range ks {
		pubs[i] = k.Public()
	}
	keys, err := NewKeys(pubs...)
	require.NoError(tb, err)
	return keys
}

// event is a body of the shapes the gate writes.
type event struct {
	Withdrawal string            `json:"withdrawal"`
	Amount     string            `json:"amount"`
	Count      int64             `json:"count"`
	Details    map[string]string `json:"details,omitempty"`
}

// eventBody is the body of the i-th event of a test log.
func eventBody(i int) event {
	return event{Withdrawal: fmt.Sprintf("wd_%06d", i), Amount: fmt.Sprintf("%d000000000000000000", i+1), Count: int64(i),
		Details: map[string]string{"note": "ü \"quoted\" <tag> & \u2028 \U0001F600"}}
}

var kinds = []string{KindRequest, KindFinding, KindDecision, KindApproval, KindRejection, KindBreaker, KindPolicy}

// buildLog makes a log of n event records, checkpointed every `every`
// records by key, one second apart, and returns its entries (offset =
// index).
func buildLog(tb testing.TB, n, every int, key Signer) []Entry {
	tb.Helper()
	clk := clock.NewManual(t0)
	c, err := New(Config{CheckpointEvery: every, CheckpointInterval: time.Hour}, key, clk)
	require.NoError(tb, err)
	var out []Entry
	add := func(r Record) {
		m, err := r.Message("cordon.audit")
		require.NoError(tb, err)
		out = append(out, Entry{Offset: int64(len(out)), Key: m.Key, Value: m.Value})
	}
	for i := range n {
		clk.Advance(time.Second)
		r, err := c.Append(kinds[i%len(kinds)], fmt.Sprintf("wd_%06d", i), "token-exchange", eventBody(i))
		require.NoError(tb, err)
		add(r)
		if c.Due() {
			cp, err := c.Checkpoint()
			require.NoError(tb, err)
			add(cp)
		}
		c.Commit()
	}
	return out
}

// seqAt is the seq of the record at offset i of entries.
func seqAt(tb testing.TB, es []Entry, i int) uint64 {
	tb.Helper()
	r, err := DecodeRecord(es[i].Value)
	require.NoError(tb, err)
	return r.Seq
}
