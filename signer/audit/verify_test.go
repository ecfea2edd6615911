package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// renumber gives es offsets 0, 1, … (a log written afresh).
func renumber(es []Entry) []Entry {
	for i := range es {
		es[i].Offset = int64(i)
	}
	return es
}

func clone(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = Entry{Offset: e.Offset, Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value)}
	}
	return out
}

// rechain rewrites the prev of every record from index from on, as an
// attacker with write access who knows the format (but no key) would,
// so the chain is consistent again.
func rechain(tb testing.TB, es []Entry, from int) []Entry {
	tb.Helper()
	for i := from; i < len(es); i++ {
		r, err := DecodeRecord(es[i].Value)
		require.NoError(tb, err)
		if i > 0 {
			r.Prev = HashBytes(es[i-1].Value)
		}
		b, err := r.Canonical()
		require.NoError(tb, err)
		es[i].Value = b
	}
	return es
}

// Tampering of a log, each as an attacker with write access to the
// topic would do it (in tests they write the result to a fresh topic).
type tamper struct {
	name string
	do   func(tb testing.TB, es []Entry) []Entry
	// want: the reason and the seq and offset of the record named.
	reason string
	seq    func(tb testing.TB, orig []Entry) uint64
	offset int64
	other  func(tb testing.TB, orig []Entry) uint64 // the second record named, 0 for none
}

// mid is the index of an event record in the middle of the clean log.
const mid = 120

func tampers() []tamper {
	at := func(i int) func(testing.TB, []Entry) uint64 {
		return func(tb testing.TB, es []Entry) uint64 { return seqAt(tb, es, i) }
	}
	none := func(testing.TB, []Entry) uint64 { return 0 }
	resign := func(key *Key, bad bool) func(tb testing.TB, es []Entry) []Entry {
		// Replace the first checkpoint after mid by one the attacker
		// made, then make the chain after it consistent.
		return func(tb testing.TB, es []Entry) []Entry {
			i := firstCheckpoint(tb, es, mid)
			r, err := DecodeRecord(es[i].Value)
			require.NoError(tb, err)
			var cp Checkpoint
			require.NoError(tb, json.Unmarshal(r.Body, &cp))
			cp.Key = key.KeyID()
			cp.Signature = base64.StdEncoding.EncodeToString(key.Sign(CheckpointMessage(cp.Seq, cp.Hash)))
			if bad {
				cp.Signature = base64.StdEncoding.EncodeToString(key.Sign(CheckpointMessage(cp.Seq+1, cp.Hash)))
			}
			r.Body, err = json.Marshal(cp)
			require.NoError(tb, err)
			es[i].Value, err = r.Canonical()
			require.NoError(tb, err)
			return rechain(tb, es, i+1)
		}
	}
	cpAfter := func(tb testing.TB, es []Entry) uint64 { return seqAt(tb, es, firstCheckpoint(tb, es, mid)) }
	return []tamper{
		{name: "one byte of a record's body changed", do: func(tb testing.TB, es []Entry) []Entry {
			i := bytes.Index(es[mid].Value, []byte(`\"amount\":\"`)) + len(`\"amount\":\"`)
			es[mid].Value[i]++
			return es
		}, reason: Altered, seq: at(mid), offset: mid, other: at(mid + 1)},
		{name: "one byte of a record's prev changed", do: func(tb testing.TB, es []Entry) []Entry {
			i := bytes.Index(es[mid].Value, []byte(`"prev":"`)) + len(`"prev":"`) + 10
			if es[mid].Value[i] == '0' {
				es[mid].Value[i] = '1'
			} else {
				es[mid].Value[i] = '0'
			}
			return es
		}, reason: Altered, seq: at(mid), offset: mid, other: at(mid - 1)},
		{name: "one byte changed breaking the JSON", do: func(tb testing.TB, es []Entry) []Entry {
			es[mid].Value[0] = '['
			return es
		}, reason: Altered, seq: at(mid), offset: mid, other: none},
		{name: "one record removed", do: func(tb testing.TB, es []Entry) []Entry {
			return slices.Delete(es, mid, mid+1)
		}, reason: Removed, seq: at(mid + 1), offset: mid, other: at(mid - 1)},
		{name: "the first record removed", do: func(tb testing.TB, es []Entry) []Entry {
			return es[1:]
		}, reason: Removed, seq: at(1), offset: 0, other: none},
		{name: "two records swapped", do: func(tb testing.TB, es []Entry) []Entry {
			es[mid], es[mid+1] = es[mid+1], es[mid]
			return es
		}, reason: Reordered, seq: at(mid + 1), offset: mid, other: at(mid)},
		{name: "two distant records swapped", do: func(tb testing.TB, es []Entry) []Entry {
			es[mid], es[mid+9] = es[mid+9], es[mid]
			return es
		}, reason: Reordered, seq: at(mid + 9), offset: mid, other: at(mid)},
		{name: "an earlier record written again", do: func(tb testing.TB, es []Entry) []Entry {
			return slices.Insert(es, mid, es[mid-5])
		}, reason: Reordered, seq: at(mid - 5), offset: mid, other: at(mid - 1)},
		{name: "a record's key changed", do: func(tb testing.TB, es []Entry) []Entry {
			es[mid].Key = []byte("7")
			return es
		}, reason: Altered, seq: at(mid), offset: mid, other: none},
		{name: "a record altered and the chain after it rewritten", do: func(tb testing.TB, es []Entry) []Entry {
			r, err := DecodeRecord(es[mid].Value)
			require.NoError(tb, err)
			r.Actor = "someone-else"
			es[mid].Value, err = r.Canonical()
			require.NoError(tb, err)
			return rechain(tb, es, mid+1)
		}, reason: CheckpointMismatch, seq: cpAfter, offset: -1, other: none},
		{name: "a forged checkpoint signature", do: resign(testKey("leader"), true),
			reason: BadSignature, seq: cpAfter, offset: -1, other: none},
		{name: "a checkpoint signed by an untrusted key", do: resign(testKey("attacker"), false),
			reason: UntrustedKey, seq: cpAfter, offset: -1, other: none},
	}
}

func firstCheckpoint(tb testing.TB, es []Entry, from int) int {
	tb.Helper()
	for i := from; i < len(es); i++ {
		if r, err := DecodeRecord(es[i].Value); err == nil && r.Kind == KindCheckpoint {
			return i
		}
	}
	tb.Fatal("no checkpoint")
	return -1
}

// checkNamed asserts that err and rep name exactly the tampered record.
func checkNamed(tb testing.TB, tc tamper, orig []Entry, rep Report, err error) {
	tb.Helper()
	require.ErrorIs(tb, err, ErrTampered)
	var te *TamperError
	require.True(tb, errors.As(err, &te))
	require.False(tb, rep.OK)
	require.NotNil(tb, rep.Problem)
	p := rep.Problem
	require.Equal(tb, tc.reason, p.Reason, p.Detail)
	require.Equal(tb, tc.seq(tb, orig), p.Seq, p.Detail)
	if tc.offset >= 0 {
		require.Equal(tb, tc.offset, p.Offset, p.Detail)
	} else {
		require.Equal(tb, int64(firstCheckpoint(tb, orig, mid)), p.Offset, p.Detail)
	}
	if o := tc.other(tb, orig); o != 0 {
		require.NotNil(tb, p.Other, p.Detail)
		require.Equal(tb, o, p.Other.Seq, p.Detail)
	}
	require.Contains(tb, p.Detail, fmt.Sprintf("%d", p.Seq))
	require.Equal(tb, *p, te.Problem)
}

// TestVerifyClean: a clean log of a few hundred records verifies; its
// head, last checkpoint and unsigned tail are reported.
func TestVerifyClean(t *testing.T) {
	es := buildLog(t, 305, 50, testKey("leader"))
	rep, err := Verify(es, trusted(t, testKey("leader")))
	require.NoError(t, err)
	require.True(t, rep.OK)
	require.Nil(t, rep.Problem)
	require.Equal(t, 311, rep.Records, "305 events and 6 checkpoints")
	require.Equal(t, uint64(311), rep.HeadSeq)
	require.Equal(t, HashBytes(es[len(es)-1].Value), rep.HeadHash)
	require.Equal(t, uint64(311), rep.Head.Seq)
	require.NotNil(t, rep.LastCheckpoint)
	require.Equal(t, uint64(306), rep.LastCheckpoint.Seq)
	require.Equal(t, uint64(305), rep.LastCheckpoint.Covers)
	require.Equal(t, &Range{From: 307, To: 311}, rep.Unsigned)
	require.Equal(t, []string{"records 307..311 after the last checkpoint are not yet signed"}, rep.Warnings)
	require.Contains(t, rep.Text(), "audit log verified: 311 records")

	empty, err := Verify(nil, nil)
	require.NoError(t, err)
	require.Equal(t, 0, empty.Records)
	require.Nil(t, empty.Unsigned)

	_, err = Verify(es, trusted(t, testKey("other")))
	require.ErrorIs(t, err, ErrTampered, "checkpoints of a key not trusted")
	_, err = Verify(es, nil)
	require.ErrorIs(t, err, ErrTampered, "no key trusted: no checkpoint verifies")
}

// TestVerifyNamesTampering: each tampering is named: its reason, the
// record's seq and offset, and the second record of a pair.
func TestVerifyNamesTampering(t *testing.T) {
	orig := buildLog(t, 305, 50, testKey("leader"))
	keys := trusted(t, testKey("leader"))
	for _, tc := range tampers() {
		t.Run(tc.name, func(t *testing.T) {
			es := renumber(tc.do(t, clone(orig)))
			rep, err := Verify(es, keys)
			checkNamed(t, tc, orig, rep, err)
			require.Contains(t, rep.Text(), "AUDIT LOG TAMPERED WITH: "+tc.reason)
		})
	}
}

// TestVerifyRetriedWrite: the same record written twice in a row (a
// retried write) counts once, with a warning.
func TestVerifyRetriedWrite(t *testing.T) {
	es := buildLog(t, 20, 5, testKey("leader"))
	es = renumber(slices.Insert(clone(es), 7, es[6]))
	rep, err := Verify(es, trusted(t, testKey("leader")))
	require.NoError(t, err)
	require.Equal(t, len(es)-1, rep.Records)
	require.Contains(t, strings.Join(rep.Warnings, "\n"), "written again at offset 7 (first at offset 6)")
}

// TestVerifyTruncatedTail: cutting records off the end leaves a log
// that verifies (the limit of any chain), except against an anchor
// written down earlier.
func TestVerifyTruncatedTail(t *testing.T) {
	es := buildLog(t, 40, 10, testKey("leader"))
	keys := trusted(t, testKey("leader"))
	full, err := Verify(es, keys)
	require.NoError(t, err)
	cut := es[:len(es)-3]
	rep, err := Verify(cut, keys)
	require.NoError(t, err, "a chain alone cannot tell its tail was cut off")
	require.Equal(t, full.Records-3, rep.Records)

	v := NewVerifier(keys)
	v.Expect(full.HeadSeq, full.HeadHash)
	for _, e := range cut {
		require.True(t, v.Add(e))
	}
	rep, err = v.Finish()
	require.ErrorIs(t, err, ErrTampered)
	require.Equal(t, Truncated, rep.Problem.Reason)
	require.Equal(t, full.HeadSeq, rep.Problem.Seq)

	// The anchor on a rewritten log: another record under the seq.
	rew := rechain(t, clone(es), len(es)-1)
	r, err := DecodeRecord(rew[len(rew)-1].Value)
	require.NoError(t, err)
	r.Subject = "rewritten"
	rew[len(rew)-1].Value, err = r.Canonical()
	require.NoError(t, err)
	v = NewVerifier(keys)
	v.Expect(full.HeadSeq, full.HeadHash)
	for _, e := range rew {
		v.Add(e)
	}
	rep, err = v.Finish()
	require.ErrorIs(t, err, ErrTampered)
	require.Equal(t, Altered, rep.Problem.Reason)
	require.Equal(t, full.HeadSeq, rep.Problem.Seq)
}

// FuzzVerify: Verify never panics on any sequence of records made from a
// genuine log by removing, repeating, swapping and changing bytes; an
// untouched log always verifies; a problem always names an offset that
// is in the log.
func FuzzVerify(f *testing.F) {
	f.Add(uint8(30), []byte{})
	f.Add(uint8(30), []byte{0, 5, 1, 1, 7, 2, 3, 9, 4})
	f.Add(uint8(60), []byte{3, 10, 20, 2, 40, 4, 1, 1, 1})
	base := buildLog(f, 80, 7, testKey("leader"))
	keys := trusted(f, testKey("leader"))
	f.Fuzz(func(t *testing.T, n uint8, ops []byte) {
		es := clone(base[:int(n)%len(base)])
		for i := 0; i+2 < len(ops) && len(es) > 0; i += 3 {
			a, b := int(ops[i+1])%len(es), int(ops[i+2])%len(es)
			switch ops[i] % 5 {
			case 0:
				es = slices.Delete(es, a, a+1)
			case 1:
				es = slices.Insert(es, a, es[b])
			case 2:
				es[a], es[b] = es[b], es[a]
			case 3:
				if len(es[a].Value) > 0 {
					v := bytes.Clone(es[a].Value)
					v[b%len(v)] ^= ops[i+2] | 1
					es[a].Value = v
				}
			case 4:
				es[a].Key = []byte{ops[i+2]}
			}
		}
		es = renumber(es)
		rep, err := Verify(es, keys)
		if len(ops) < 3 {
			require.NoError(t, err, "an untouched log verifies")
		}
		if err != nil {
			require.ErrorIs(t, err, ErrTampered)
			require.NotNil(t, rep.Problem)
			require.GreaterOrEqual(t, rep.Problem.Offset, int64(0))
			require.Less(t, rep.Problem.Offset, int64(len(es)))
		} else {
			require.True(t, rep.OK)
			require.LessOrEqual(t, rep.Records, len(es))
		}
	})
}
