package testkit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// RenderDOM opens the page at path in headless Chromium, lets its scripts
// run, and returns the resulting DOM. Without chromium the test is
// skipped, or fails when CORDON_TEST_REQUIRE_TOOLS is set.
func RenderDOM(tb testing.TB, path string) string {
	tb.Helper()
	bin, err := exec.LookPath("chromium")
	if err == nil {
		// Debian's /usr/bin/chromium is a shell wrapper; the browser
		// itself takes the flags as given.
		if _, statErr := os.Stat("/usr/lib/chromium/chromium"); statErr == nil {
			bin = "/usr/lib/chromium/chromium"
		}
	}
	if err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			tb.Fatal("chromium is not installed (make test-deps installs it):", err)
		}
		tb.Skip("chromium is not installed:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --no-sandbox: tests run as root in CI; the page is our own file.
	//nolint:gosec // the chromium found on PATH, on a page the test wrote
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+tb.TempDir(), "--virtual-time-budget=5000", "--dump-dom", "file://"+path)
	// A clean environment: nothing of the test process's leaks into the browser.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + tb.TempDir(), "LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(tb, err, "chromium --dump-dom %s: %s", path, stderr.String())
	return string(out)
}
