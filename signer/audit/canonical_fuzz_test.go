package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/jcs"
)

// Canonical writes what jcs.Marshal writes for the record's map.
func FuzzCanonical(f *testing.F) {
	f.Add(uint64(1), int64(0), "request", "wd_1", "token-exchange", `{"a":"<&>\u2028","b":[1,2.50,"\u0000"]}`)
	f.Add(uint64(MaxSeq), int64(1), "checkpoint", "", "gate", `"x\"\\\n"`)
	f.Add(uint64(77), int64(999999999), "status", "wd_\u00e9\U0001F600", "é\t", `null`)
	f.Fuzz(func(t *testing.T, seq uint64, ns int64, kind, subject, actor, body string) {
		r := Record{Seq: seq, Prev: ZeroHash, At: time.Unix(1_700_000_000, ns%1e9).UTC(), Kind: kind, Subject: subject, Actor: actor, Body: []byte(body)}
		if seq > 1 {
			r.Prev = HashBytes([]byte(body))
		}
		got, err := r.Canonical()
		if err != nil {
			return // refused by check
		}
		want, err := jcs.Marshal(map[string]any{
			"v": Version, "seq": r.Seq, "prev": r.Prev, "at": r.At.UTC().Format(time.RFC3339Nano),
			"kind": r.Kind, "subject": r.Subject, "actor": r.Actor, "body": string(r.Body),
		})
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}
