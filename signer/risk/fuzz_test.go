package risk

import (
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/config"
)

// FuzzParseScore: the exchange's risk score comes with the request. A
// score is accepted only as a decimal from 0 to 100, and then exactly.
func FuzzParseScore(f *testing.F) {
	for _, s := range []string{"0", "70", "69.999999", "100", "100.000001", "1e2", "-1", " 70", "070", "0x46", "NaN", "7/1", "50.", ".5", "99.1234567"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseScore(s)
		if err != nil {
			require.Nil(t, r)
			return
		}
		require.True(t, r.Sign() >= 0 && r.Cmp(big.NewRat(100, 1)) <= 0, "%q → %s", s, r)
		back, ok := new(big.Rat).SetString(s)
		require.True(t, ok)
		require.Zero(t, back.Cmp(r))
		require.Regexp(t, `^[0-9]{1,3}(\.[0-9]{1,6})?$`, s)
	})
}

// FuzzRestoreAccount: a stored account state read back is either
// refused, leaving nothing behind, or restored so that it snapshots to
// itself.
func FuzzRestoreAccount(f *testing.F) {
	good := AccountState{Account: "a",
		Destinations: []DestinationState{{Chain: "eth", Network: "mainnet", Address: "0x01", First: time.Unix(1e9, 0).UTC(), Last: time.Unix(1e9, 5).UTC(), Count: 2}},
		Assets:       []AssetState{{Chain: "eth", Network: "mainnet", Asset: "native", Count: 2, Max: "123456789012345678901234567890"}},
		Recent: []RecordState{{ID: "wd_1", Chain: "eth", Network: "mainnet", Asset: "native", Amount: "5", USD: "1/3", Destination: "0x02", Time: time.Unix(2e9, 0).UTC()},
			{ID: "wd_2", Chain: "eth", Network: "mainnet", Asset: "native", Amount: "7", USD: "12.5", Destination: "0x02", Time: time.Unix(2e9, 0).UTC()}}}
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"account":"a","recent":[{"id":"x","chain":"eth","network":"n","asset":"native","amount":"01","destination":"d","time":"2030-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"account":"a","recent":[{"id":"x","chain":"eth","network":"n","asset":"native","amount":"1","usd":"1/0","destination":"d","time":"2030-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"account":"a","assets":[{"chain":"eth","network":"n","asset":"native","count":1,"max":"1"},{"chain":"eth","network":"n","asset":"native","count":1,"max":"2"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var st AccountState
		if json.Unmarshal(raw, &st) != nil {
			return
		}
		cfg := Defaults()
		var p config.Problems
		cfg.Validate(&p, "risk")
		s := newState(&cfg)
		if err := s.restore(st); err != nil {
			_, ok := s.snapshot(st.Account)
			require.False(t, ok, "a refused state left %s behind", st.Account)
			require.Empty(t, s.byID)
			return
		}
		got, _ := s.snapshot(st.Account)
		s2 := newState(&cfg)
		require.NoError(t, s2.restore(got))
		again, _ := s2.snapshot(st.Account)
		require.Equal(t, got, again)
	})
}
