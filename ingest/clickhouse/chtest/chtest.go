package chtest

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse/chserver"
)

// Server starts a private clickhouse-server for the test and returns
// it. Without the server installed the test is skipped, or fails when
// CORDON_TEST_REQUIRE_TOOLS is set (make test installs it first).
func Server(tb testing.TB) *chserver.Server {
	tb.Helper()
	Need(tb)
	s, err := chserver.Start(context.Background(), chserver.Config{Dir: tb.TempDir()})
	require.NoError(tb, err)
	tb.Cleanup(s.Stop)
	return s
}

// Need skips the test when clickhouse-server is not installed,
// or fails it when CORDON_TEST_REQUIRE_TOOLS is set.
func Need(tb testing.TB) {
	tb.Helper()
	if _, _, err := chserver.Find(); err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
}
