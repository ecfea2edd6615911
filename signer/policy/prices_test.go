package policy

import (
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

const usdt = "0xdac17f958d2ee523a2206206994597c13d831ec7"

func testPrices(t *testing.T) *Prices {
	t.Helper()
	p, err := NewPrices(PricesConfig{MaxAge: 10 * time.Minute, Assets: []AssetPrice{
		{Chain: "eth", Network: "mainnet", Asset: intent.Native, Decimals: 18, USD: "3000.10"},
		{Chain: "eth", Asset: intent.Native, Decimals: 18, USD: "0.000001"},
		{Chain: "btc", Network: "mainnet", Asset: intent.Native, Decimals: 8},
		{Chain: "eth", Network: "mainnet", Asset: usdt, Decimals: 6, USD: "1", Static: true},
	}}, t0)
	require.NoError(t, err)
	return p
}

func TestPricesValue(t *testing.T) {
	p := testPrices(t)
	cases := []struct {
		name, chain, network, asset, amount string
		now                                 time.Duration
		want, why                           string
	}{
		{"1.5 ETH", "eth", "mainnet", intent.Native, "1500000000000000000", 0, "4500.15", ""},
		{"one wei", "eth", "mainnet", intent.Native, "1", 0, "0.0000000000000030001", ""},
		{"another network takes the chain's entry", "eth", "sepolia", intent.Native, "1000000000000000000", 0, "0.000001", ""},
		{"config price at its max age", "eth", "mainnet", intent.Native, "1", 10 * time.Minute, "0.0000000000000030001", ""},
		{"config price past its max age", "eth", "mainnet", intent.Native, "1", 10*time.Minute + time.Second, "", "stale"},
		{"static never stale", "eth", "mainnet", usdt, "2500000", 1000 * time.Hour, "2.5", ""},
		{"no price yet", "btc", "mainnet", intent.Native, "100000000", 0, "", "no price for btc mainnet native yet"},
		{"asset not configured", "eth", "mainnet", "0xabc", "1", 0, "", "not configured"},
		{"chain not configured", "btc", "testnet", intent.Native, "1", 0, "", "not configured"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			amount, _ := new(big.Int).SetString(c.amount, 10)
			u, why := p.Value(c.chain, c.network, c.asset, amount, t0.Add(c.now))
			if c.want == "" {
				require.False(t, u.Known())
				require.Contains(t, why, c.why)
				return
			}
			require.Empty(t, why)
			require.Equal(t, 0, u.Cmp(usd(t, c.want)), "%s: got %s", c.name, u.Rat().FloatString(20))
		})
	}
	u, why := p.Value("eth", "mainnet", intent.Native, nil, t0)
	require.False(t, u.Known())
	require.Equal(t, "no amount", why)
	u, _ = p.Value("eth", "mainnet", intent.Native, big.NewInt(-1), t0)
	require.False(t, u.Known())
}

func TestPricesUpdate(t *testing.T) {
	p := testPrices(t)
	value := func(now time.Time) intent.USD {
		u, _ := p.Value("btc", "mainnet", intent.Native, big.NewInt(100_000_000), now)
		return u
	}
	require.NoError(t, p.Update("btc", "mainnet", intent.Native, usd(t, "65000.5"), t0.Add(time.Minute), t0.Add(time.Minute)))
	require.Equal(t, 0, value(t0.Add(2*time.Minute)).Cmp(usd(t, "65000.5")))
	// An older update arriving late is ignored.
	require.NoError(t, p.Update("btc", "mainnet", intent.Native, usd(t, "1"), t0, t0.Add(2*time.Minute)))
	require.Equal(t, 0, value(t0.Add(2*time.Minute)).Cmp(usd(t, "65000.5")))
	// Stale after max_age from its publication, not from its arrival.
	require.False(t, value(t0.Add(11*time.Minute+time.Second)).Known())

	for name, err := range map[string]error{
		"zero":          p.Update("btc", "mainnet", intent.Native, usd(t, "0"), t0, t0),
		"negative":      p.Update("btc", "mainnet", intent.Native, usd(t, "-5"), t0, t0),
		"unknown":       p.Update("btc", "mainnet", intent.Native, intent.USD{}, t0, t0),
		"future":        p.Update("btc", "mainnet", intent.Native, usd(t, "2"), t0.Add(2*time.Minute), t0),
		"static":        p.Update("eth", "mainnet", usdt, usd(t, "0.5"), t0, t0),
		"unconfigured":  p.Update("eth", "mainnet", "0xabc", usd(t, "1"), t0, t0),
		"bad record":    p.Apply([]byte(`{"chain":"btc","network":"mainnet","asset":"native","usd":65000,"at":"2026-03-01T12:00:00Z"}`), t0),
		"float price":   p.Apply([]byte(`{"chain":"btc","network":"mainnet","asset":"native","usd":"6.5e4","at":"2026-03-01T12:00:00Z"}`), t0),
		"no time":       p.Apply([]byte(`{"chain":"btc","network":"mainnet","asset":"native","usd":"65000"}`), t0),
		"unknown field": p.Apply([]byte(`{"chain":"btc","network":"mainnet","asset":"native","usd":"65000","at":"2026-03-01T12:00:00Z","x":1}`), t0),
	} {
		require.Error(t, err, name)
	}
	require.True(t, errors.Is(p.Update("eth", "mainnet", usdt, usd(t, "0.5"), t0, t0), ErrStaticPrice))
	require.True(t, errors.Is(p.Update("eth", "mainnet", "0xabc", usd(t, "1"), t0, t0), ErrUnknownAsset))
	require.NoError(t, p.Apply([]byte(`{"chain":"btc","network":"mainnet","asset":"native","usd":"70000.01","at":"2026-03-01T12:05:00Z"}`), t0.Add(5*time.Minute)))
	require.Equal(t, 0, value(t0.Add(6*time.Minute)).Cmp(usd(t, "70000.01")))

	// Concurrent readers and a writer.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				if i == 0 {
					_ = p.Update("btc", "mainnet", intent.Native, usd(t, "70000"), t0.Add(time.Duration(6*60+j)*time.Second), t0.Add(8*time.Minute))
				} else {
					value(t0.Add(8 * time.Minute))
				}
			}
		}()
	}
	wg.Wait()
}

func TestPricesConfigValidate(t *testing.T) {
	var p config.Problems
	PricesConfig{MaxAge: -time.Second, Assets: []AssetPrice{
		{Network: "mainnet", Decimals: 40, USD: "0"},
		{Chain: "eth", Asset: "native", Decimals: 18, Static: true},
		{Chain: "eth", Asset: "native", Decimals: 18, USD: "1e3"},
	}}.Validate(&p, "gate.policy.prices")
	err := p.Err()
	require.Error(t, err)
	for _, want := range []string{
		"gate.policy.prices.max_age: -1s", "gate.policy.prices.assets[0].chain", "gate.policy.prices.assets[0].asset",
		"gate.policy.prices.assets[0].decimals: 40", "gate.policy.prices.assets[0].usd: \"0\": a price is more than 0",
		"gate.policy.prices.assets[1].static", "gate.policy.prices.assets[2].usd: \"1e3\"", "gate.policy.prices.assets[2]: eth//native is also gate.policy.prices.assets[1]",
	} {
		require.Contains(t, err.Error(), want)
	}
	_, err = NewPrices(PricesConfig{Assets: []AssetPrice{{Chain: "eth", Asset: "native", Decimals: 18, USD: "-1"}}}, t0)
	require.Error(t, err)
}
