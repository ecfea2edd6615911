// Package hsmtest starts a SoftHSM2 token of its own for a test: a
// temporary token directory, its SOFTHSM2_CONF file, one initialized
// token and a PIN file. Without SoftHSM2 installed the test is skipped,
// or fails when CORDON_TEST_REQUIRE_TOOLS is set (make test installs it
// through scripts/test-deps.sh).
package hsmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Modules are where Debian and others install SoftHSM2's library.
var Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// Token is one initialized SoftHSM2 token.
type Token struct {
	// Module is the path of libsofthsm2.so.
	Module string
	// Label is the token's label; PIN its user PIN, written to PINFile
	// (mode 0600); SOPIN the security officer's.
	Label   string
	PIN     string
	PINFile string
	SOPIN   string
	// Conf is the SOFTHSM2_CONF file naming the token directory Dir.
	Conf string
	Dir  string
	// Env is what a process started for the token needs in its
	// environment ("SOFTHSM2_CONF=…").
	Env []string
}

// Args are the plugin's flags for the token (hsm.ParseArgs reads them).
func (t *Token) Args() []string {
	return []string{"-module", t.Module, "-token-label", t.Label, "-pin-file", t.PINFile}
}

// Find returns the paths of libsofthsm2.so and softhsm2-util, or an
// error saying what is missing.
func Find() (module, util string, err error) {
	util, err = exec.LookPath("softhsm2-util")
	if err != nil {
		return "", "", fmt.Errorf("softhsm2-util is not installed (make test installs softhsm2): %w", err)
	}
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			return m, util, nil
		}
	}
	return "", "", fmt.Errorf("libsofthsm2.so is not in %v (make test installs softhsm2)", Modules)
}

// Need skips the test when SoftHSM2 is not installed, or fails it when
// CORDON_TEST_REQUIRE_TOOLS is set.
func Need(tb testing.TB) (module, util string) {
	tb.Helper()
	module, util, err := Find()
	if err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	return module, util
}

// Start initializes a fresh token in a directory of the test's own and
// points SOFTHSM2_CONF at it for the rest of the test (tb.Setenv: such a
// test cannot run in parallel, and SoftHSM2 reads the variable when the
// library is initialized, so one process sees one Start's token at a
// time). Processes the test starts get it from Token.Env.
func Start(tb testing.TB) *Token {
	tb.Helper()
	module, util := Need(tb)
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	t := &Token{
		Module: module,
		Label:  "cordon-" + random(4),
		PIN:    random(8),
		SOPIN:  random(8),
		Conf:   conf,
		Dir:    tokens,
		Env:    []string{"SOFTHSM2_CONF=" + conf},
	}
	t.PINFile = filepath.Join(dir, "pin")
	if err := os.WriteFile(t.PINFile, []byte(t.PIN+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The PINs are the test's own throwaway ones; softhsm2-util takes
	// them only as arguments.
	cmd := exec.CommandContext(ctx, util, "--init-token", "--free", "--label", t.Label, "--pin", t.PIN, "--so-pin", t.SOPIN) //nolint:gosec // a test helper running softhsm2-util with its own arguments
	cmd.Env = append(os.Environ(), t.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	tb.Setenv("SOFTHSM2_CONF", conf)
	return t
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
