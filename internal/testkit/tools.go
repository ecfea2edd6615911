package testkit

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Tool returns the path of an outside tool (kcat, clickhouse-client):
// the test fails without it when CORDON_TEST_REQUIRE_TOOLS is set (make
// test installs them), and is skipped otherwise.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
		tb.Fatalf("%s is not installed (make test installs it)", name)
	}
	tb.Skipf("%s is not installed (make test installs it)", name)
	return ""
}

// Kcat produces one record with kcat, a Kafka client no one here wrote:
// key, value and headers ("name=value") as given; an empty value with
// tombstone set is a null value (a tombstone).
func Kcat(tb testing.TB, brokers []string, topic, key, value string, tombstone bool, headers ...string) {
	tb.Helper()
	args := []string{"-P", "-b", strings.Join(brokers, ","), "-t", topic, "-K", "\t"}
	if tombstone {
		args = append(args, "-Z")
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Tool(tb, "kcat"), args...) //nolint:gosec // a test helper running kcat with the test's own arguments
	cmd.Stdin = strings.NewReader(key + "\t" + value + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("kcat -P %s: %v: %s", topic, err, out)
	}
}
