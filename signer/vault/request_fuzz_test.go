package vault

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

// FuzzDecodeRequest: arbitrary bytes never panic the decoder; what it
// accepts passes its own checks and re-encodes to a request it accepts
// again, equal to the first.
func FuzzDecodeRequest(f *testing.F) {
	good := Request{V: 1, ID: "r1", Chain: "btc", Network: "regtest", Wallet: "hot", Unsigned: []byte{0x70, 0x73, 0x62, 0x74, 0xff},
		Withdrawals: []Withdrawal{{Intent: intent.Intent{ID: "wd_1", Chain: "btc", Network: "regtest", Asset: "native", Amount: "1"}}},
		Created:     time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(good)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Add(append(append([]byte{}, b...), []byte(` {}`)...))
	f.Add([]byte(`{"v":1,"id":"x","chain":"eth","network":"devnet","wallet":"w","unsigned":"AA==","withdrawals":[{"intent":{"id":"a"}},{"intent":{"id":"a"}}],"created":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadRequest)
			return
		}
		require.NoError(t, r.check())
		again, err := json.Marshal(r)
		require.NoError(t, err)
		r2, err := DecodeRequest(again)
		require.NoError(t, err)
		require.Equal(t, r.IDs(), r2.IDs())
		require.Equal(t, r.TxHash(), r2.TxHash())
	})
}

func TestDecodeRequestSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"v":2}`, "version 2"},
		{`{"v":1,"id":"r","chain":"doge"}`, `chain "doge"`},
		{`{"v":1,"extra":1}`, "unknown field"},
		{`{"v":1,"id":"r","chain":"eth","network":"devnet","wallet":"w","unsigned":"AA==","withdrawals":[{"intent":{"id":"a"}},{"intent":{"id":"b"}}],"created":"2026-01-01T00:00:00Z"}`, "2 withdrawals in one Ethereum transaction"},
		{`{"v":1,"id":"r","chain":"btc","network":"regtest","wallet":"w","unsigned":"AA==","withdrawals":[{"intent":{"id":"a"}},{"intent":{"id":"a"}}],"created":"2026-01-01T00:00:00Z"}`, "listed twice"},
		{`{"v":1} {}`, "data after the request"},
	} {
		_, err := DecodeRequest([]byte(c.in))
		require.ErrorIs(t, err, ErrBadRequest, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
}
