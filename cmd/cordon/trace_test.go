package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		c    chain.Chain
		want string
		err  string
	}{
		{"1000", chain.ETH, "1000", ""},
		{"1.5eth", chain.ETH, "1500000000000000000", ""},
		{"1.5 ETH", chain.ETH, "1500000000000000000", ""},
		{"20gwei", chain.ETH, "20000000000", ""},
		{"7wei", chain.ETH, "7", ""},
		{"0.1btc", chain.BTC, "10000000", ""},
		{"5000sat", chain.BTC, "5000", ""},
		{"0.000000001btc", chain.BTC, "", "more decimals"},
		{"1.5", chain.ETH, "", "needs a unit"},
		{"-1", chain.ETH, "", "want base units"},
		{"1e18", chain.ETH, "", "want base units"},
		{"0x10", chain.ETH, "", "want base units"},
		{"1btc", chain.ETH, "", "want base units"},
		{"eth", chain.ETH, "", "want base units"},
		{"", chain.ETH, "", "want base units"},
	} {
		v, err := parseAmount(tc.in, tc.c)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, v.String(), tc.in)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-20T08:30:00Z": time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"72h":                  now.Add(-72 * time.Hour),
		"":                     {},
	} {
		got, err := parseWhen(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %s", in, got)
	}
	for _, bad := range []string{"yesterday", "-5h", "2026-13-01", "0s"} {
		_, err := parseWhen(bad, now)
		require.ErrorContains(t, err, "want RFC 3339", bad)
	}
}

func TestTraceFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--chain", "sol"}, `--chain "sol"`},
		{[]string{"--chain", "eth", "--format", "svg"}, `--format "svg"`},
		{[]string{"--chain", "eth", "--since", "soon"}, "--since"},
		{[]string{"--chain", "eth", "--min-amount", "lots"}, "--min-amount"},
		{[]string{"--chain", "eth", "--data-dir", dir}, "no --clickhouse given and no " + dir},
		{[]string{"--chain", "eth", "--clickhouse", "127.0.0.1:1"}, "--network is required"},
	} {
		err := cmdTrace(t.Context(), tc.args)
		require.ErrorContains(t, err, tc.err, tc.args)
	}
}
