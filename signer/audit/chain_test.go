package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/jcs"
)

func newChain(t *testing.T, cfg Config) (*Chain, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(t0)
	c, err := New(cfg, testKey("leader"), clk)
	require.NoError(t, err)
	return c, clk
}

// TestAppendChains: records are numbered from 1, each carrying the
// previous one's hash, their canonical bytes decode back to them, and
// the Kafka record is keyed by seq with the canonical bytes as value.
func TestAppendChains(t *testing.T) {
	c, clk := newChain(t, Config{})
	prev := ZeroHash
	for i := 1; i <= 5; i++ {
		clk.Advance(time.Millisecond)
		r, err := c.Append(KindRequest, "wd_1", "token-a", map[string]any{"i": i})
		require.NoError(t, err)
		require.Equal(t, uint64(i), r.Seq)
		require.Equal(t, prev, r.Prev)
		require.Equal(t, clk.Now(), r.At)
		b, err := r.Canonical()
		require.NoError(t, err)
		canon, err := jcs.Transform(b)
		require.NoError(t, err)
		require.Equal(t, string(canon), string(b), "the bytes are RFC 8785 canonical")
		back, err := DecodeRecord(b)
		require.NoError(t, err)
		require.Equal(t, r, back)
		m, err := r.Message("cordon.audit")
		require.NoError(t, err)
		require.Equal(t, []byte(jsonInt(i)), m.Key)
		require.Equal(t, b, m.Value)
		prev = HashBytes(b)
		seq, hash := c.Head()
		require.Equal(t, uint64(i), seq)
		require.Equal(t, prev, hash)
	}
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestBodyKeptAsGiven: the body keeps every digit of its numbers (a Unix
// nanosecond time, an amount in wei) and its text, compacted; bodies that
// are not JSON are refused, and so is the checkpoint kind.
func TestBodyKeptAsGiven(t *testing.T) {
	c, _ := newChain(t, Config{})
	r, err := c.Append(KindDecision, "wd_1", "gate", json.RawMessage(`{ "at_ns": 1772366400123456789, "wei": 123456789012345678901234567890, "f": 0.1 }`))
	require.NoError(t, err)
	require.Equal(t, `{"at_ns":1772366400123456789,"wei":123456789012345678901234567890,"f":0.1}`, string(r.Body))
	r, err = c.Append(KindDecision, "wd_1", "gate", struct {
		Note string `json:"note"`
	}{"<b>&"})
	require.NoError(t, err)
	require.Equal(t, `{"note":"<b>&"}`, string(r.Body), "no HTML escapes")

	_, err = c.Append(KindDecision, "wd_1", "gate", json.RawMessage(`{"a":`))
	require.ErrorIs(t, err, ErrMalformed)
	_, err = c.Append(KindDecision, "wd_1", "gate", []byte("{\"a\":\"\xff\"}"))
	require.ErrorIs(t, err, ErrMalformed, "invalid UTF-8")
	_, err = c.Append(KindCheckpoint, "", "gate", nil)
	require.ErrorIs(t, err, ErrReserved)
	_, err = c.Append("Request", "wd_1", "gate", nil)
	require.ErrorIs(t, err, ErrMalformed, "kinds are lowercase")
	seq, _ := c.Head()
	require.Equal(t, uint64(2), seq, "refused records take no seq")
}

// TestRollbackReusesSeq: records of an aborted transaction are
// forgotten and the next record takes the first one's seq and prev, so
// the log has neither a gap nor a fork.
func TestRollbackReusesSeq(t *testing.T) {
	c, clk := newChain(t, Config{CheckpointEvery: 100})
	var log []Record
	for range 3 {
		r, err := c.Append(KindRequest, "wd", "t", nil)
		require.NoError(t, err)
		log = append(log, r)
	}
	c.Commit()
	for range 2 {
		_, err := c.Append(KindFinding, "wd", "t", nil)
		require.NoError(t, err)
	}
	c.Rollback()
	seq, hash := c.Head()
	require.Equal(t, uint64(3), seq)
	h3, _ := log[2].Hash()
	require.Equal(t, h3, hash)
	clk.Advance(time.Second)
	r, err := c.Append(KindDecision, "wd", "t", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(4), r.Seq)
	require.Equal(t, h3, r.Prev)
	c.Commit()
	log = append(log, r)
	c.Rollback()
	seq, _ = c.Head()
	require.Equal(t, uint64(4), seq, "a rollback after a commit keeps what was committed")

	rep, err := Verify(entriesOf(t, log), trusted(t, testKey("leader")))
	require.NoError(t, err)
	require.Equal(t, 4, rep.Records)
}

func entriesOf(t *testing.T, recs []Record) []Entry {
	t.Helper()
	out := make([]Entry, len(recs))
	for i := range recs {
		m, err := recs[i].Message("t")
		require.NoError(t, err)
		out[i] = Entry{Offset: int64(i), Key: m.Key, Value: m.Value}
	}
	return out
}

// TestRestoreContinues: a new leader restored from the last record
// continues the chain where the old one ended, signs the tail it found
// at once, and the whole log (two leaders, two keys) verifies.
func TestRestoreContinues(t *testing.T) {
	old := buildLog(t, 10, 4, testKey("old"))
	last, err := DecodeRecord(old[len(old)-1].Value)
	require.NoError(t, err)
	require.NotEqual(t, KindCheckpoint, last.Kind)

	clk := clock.NewManual(t0.Add(-time.Hour)) // the new leader's clock is behind
	c, err := New(Config{CheckpointEvery: 4}, testKey("new"), clk)
	require.NoError(t, err)
	require.NoError(t, c.Restore(&last))
	require.True(t, c.Due(), "the tail the old leader left unsigned is signed first")
	cp, err := c.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, last.Seq+1, cp.Seq)
	require.Equal(t, last.At, cp.At, "never before the previous record")
	require.False(t, c.Due())
	_, err = c.Checkpoint()
	require.ErrorIs(t, err, ErrNothingToSign, "a checkpoint does not sign a checkpoint")
	r, err := c.Append(KindBreaker, "global", "operator-ann", map[string]string{"state": "open"})
	require.NoError(t, err)
	c.Commit()
	log := append(old, entriesOf(t, []Record{cp, r})...)
	for i := range log {
		log[i].Offset = int64(i)
	}
	rep, err := Verify(log, trusted(t, testKey("old"), testKey("new")))
	require.NoError(t, err)
	require.Equal(t, r.Seq, rep.HeadSeq)
	require.Equal(t, cp.Seq, rep.LastCheckpoint.Seq)
	require.Equal(t, testKey("new").KeyID(), rep.LastCheckpoint.Key)

	// Restored from a checkpoint, nothing is due.
	require.NoError(t, c.Restore(&cp))
	require.False(t, c.Due())
	bad := last
	bad.Prev = "nothex"
	require.Error(t, c.Restore(&bad))
	seq, _ := c.Head()
	require.Equal(t, cp.Seq, seq, "a refused restore leaves the chain as it was")
}

// TestCheckpointDue: a checkpoint is due after CheckpointEvery records,
// or CheckpointInterval after the last one once a record follows it.
func TestCheckpointDue(t *testing.T) {
	c, clk := newChain(t, Config{CheckpointEvery: 3, CheckpointInterval: 10 * time.Second})
	require.False(t, c.Due(), "an empty log")
	_, err := c.Checkpoint()
	require.ErrorIs(t, err, ErrNothingToSign)
	for range 2 {
		_, err := c.Append(KindRequest, "", "t", nil)
		require.NoError(t, err)
		require.False(t, c.Due())
	}
	_, err = c.Append(KindRequest, "", "t", nil)
	require.NoError(t, err)
	require.True(t, c.Due(), "three records")
	cp, err := c.Checkpoint()
	require.NoError(t, err)
	require.False(t, c.Due())
	var body Checkpoint
	require.NoError(t, json.Unmarshal(cp.Body, &body))
	require.Equal(t, uint64(3), body.Seq)

	clk.Advance(11 * time.Second)
	require.False(t, c.Due(), "time passed, but nothing is unsigned")
	_, err = c.Append(KindRequest, "", "t", nil)
	require.NoError(t, err)
	require.True(t, c.Due(), "a record, and the interval passed")
	_, err = c.Checkpoint()
	require.NoError(t, err)
	clk.Advance(time.Second)
	_, err = c.Append(KindRequest, "", "t", nil)
	require.NoError(t, err)
	require.False(t, c.Due())
	clk.Advance(9 * time.Second)
	require.True(t, c.Due())
}

// TestClockStepBack: a clock stepping back never makes a record older
// than the one before it.
func TestClockStepBack(t *testing.T) {
	c, clk := newChain(t, Config{})
	a, err := c.Append(KindRequest, "", "t", nil)
	require.NoError(t, err)
	clk.Advance(-time.Minute)
	b, err := c.Append(KindRequest, "", "t", nil)
	require.NoError(t, err)
	require.Equal(t, a.At, b.At)
}

func TestConfigValidate(t *testing.T) {
	_, err := New(Config{CheckpointEvery: -1, Trust: []string{"nope"}}, testKey("k"), clock.Real{})
	require.ErrorContains(t, err, "gate.audit.checkpoint_every")
	require.ErrorContains(t, err, "gate.audit.trust[0]")
	_, err = New(Config{}, nil, clock.Real{})
	require.Error(t, err)
	_, err = NewKeys("AAAA")
	require.Error(t, err)
	k, err := NewKey(" " + "c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ=" + "\n")
	require.NoError(t, err)
	require.Len(t, k.KeyID(), 16)
	_, err = NewKey("c2VlZA==")
	require.Error(t, err)
}
