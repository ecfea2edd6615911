package testkit

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse/chserver"
)

// ClickHouse starts a private clickhouse-server for the test and returns
// it. Without the server installed the test is skipped, or fails when
// CORDON_TEST_REQUIRE_TOOLS is set (make test installs it first).
func ClickHouse(tb testing.TB) *chserver.Server {
	tb.Helper()
	if _, _, err := chserver.Find(); err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	s, err := chserver.Start(context.Background(), chserver.Config{Dir: tb.TempDir()})
	require.NoError(tb, err)
	tb.Cleanup(s.Stop)
	return s
}
