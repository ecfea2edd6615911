package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
