package gate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/config"
)

// The intake decoder never panics; what it accepts is in normal form
// (decoding its own output again gives the same request and hash), and
// what it refuses wraps ErrBadRequest.
func FuzzDecodeRequest(f *testing.F) {
	var p config.Problems
	assets := NewAssetList(&p, "gate.assets", []string{"eth/mainnet", "btc/mainnet"},
		[]Asset{{Chain: "eth", Contract: "0x00000000000000000000000000000000000000cc", Symbol: "T", Decimals: 6}})
	for _, s := range []string{
		`{"id":"a","account":"b","chain":"eth","amount":"1","destination":"0x00000000000000000000000000000000000000aa"}`,
		`{"id":"a","account":"b","chain":"btc","amount":"100000","destination":"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq","context":{"client_ip":"::1","risk_score":"99.5","session_age_seconds":5}}`,
		`{"id":"a","account":"b","chain":"eth","asset":"0x00000000000000000000000000000000000000CC","amount":"1","destination":"0x00000000000000000000000000000000000000aa"}`,
		`{"id":"a","amount":"1","amount":"2"}`, `{}`, `[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		q, h, err := DecodeRequest(strings.NewReader(body), assets)
		if err != nil {
			require.True(t, errors.Is(err, ErrBadRequest), "%v", err)
			return
		}
		require.Len(t, h, 64)
		b, err := jsonOf(q)
		require.NoError(t, err)
		q2, h2, err := DecodeRequest(strings.NewReader(b), assets)
		require.NoError(t, err, "its own normal form is refused: %s", b)
		require.Equal(t, q, q2)
		require.Equal(t, h, h2)
	})
}

func jsonOf(q Request) (string, error) {
	b, err := json.Marshal(q)
	return string(b), err
}
