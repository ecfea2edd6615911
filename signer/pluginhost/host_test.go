package pluginhost_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cordonhq/cordon/plugins/pkcs11/hsmtest"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/plugins/sdk/sdktest"
	"github.com/cordonhq/cordon/signer/pluginhost"
)

// devkey builds the devkey plugin and a key file with one key.
func devkey(t *testing.T) (bin, keys, sum string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "devkey")
	out, err := exec.Command("go", "build", "-o", bin, "../../plugins/devkey").CombinedOutput()
	if err != nil {
		t.Fatalf("go build devkey: %v\n%s", err, out)
	}
	keys = filepath.Join(dir, "keys.json")
	if out, err := exec.Command(bin, "keygen", "--keys", keys, "hot").CombinedOutput(); err != nil {
		t.Fatalf("devkey keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return bin, keys, hex.EncodeToString(h[:])
}

func sign(t *testing.T, p *pluginhost.Plugin, network string) error {
	t.Helper()
	var d [32]byte
	_, _ = rand.Read(d[:])
	_, err := p.Sign(context.Background(), sdk.SignRequest{KeyID: "hot", Digest: d,
		Context: sdk.SignContext{Chain: "eth", Network: network}})
	return err
}

func TestDevkeyThroughHost(t *testing.T) {
	bin, keys, sum := devkey(t)
	p, err := pluginhost.Open(pluginhost.Config{Name: "dev", Path: bin, SHA256: sum,
		Args: []string{"--keys", keys}, Timeout: 20 * time.Second}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := p.Describe(context.Background())
	if err != nil || len(d.Keys) != 1 || d.Keys[0].ID != "hot" || len(d.Keys[0].PublicKey) != 33 {
		t.Fatalf("describe: %+v %v", d, err)
	}
	pub, err := p.PublicKey(context.Background(), "hot")
	if err != nil || !bytes.Equal(pub, d.Keys[0].PublicKey) {
		t.Fatalf("public key %x, %v", pub, err)
	}
	sdktest.Run(t, p, sdktest.Options{Chain: "eth", Network: "devnet"})
	if err := sign(t, p, "mainnet"); !errors.Is(err, sdk.ErrRefused) {
		t.Fatalf("mainnet signing through the dev key: %v, want ErrRefused", err)
	}
	if _, err := p.PublicKey(context.Background(), "nope"); !errors.Is(err, sdk.ErrUnknownKey) {
		t.Fatalf("unknown key: %v, want ErrUnknownKey", err)
	}

	// The plugin killed: a call fails or is served by a new process;
	// never a wrong signature, and signing works again.
	pid := p.Pid()
	if pid == 0 {
		t.Fatal("no plugin pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := false
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := sign(t, p, "devnet"); err == nil {
			sdktest.Check(t, p, sdk.KeyInfo{ID: "hot", PublicKey: pub}, sdktest.Options{Chain: "eth", Network: "devnet"})
			break
		}
		failed = true
		if time.Now().After(deadline) {
			t.Fatalf("signing never came back after the plugin was killed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p.Pid() == pid || p.Pid() == 0 {
		t.Fatalf("plugin pid %d after the kill of %d", p.Pid(), pid)
	}
	t.Logf("after the kill: first call failed=%v, restarted as pid %d", failed, p.Pid())
}

// TestHealthPings kills the plugin under a running health loop: the
// loop marks it unhealthy, starts it again before any call does, and
// marks it healthy; signing then works without a restart of its own.
func TestHealthPings(t *testing.T) {
	bin, keys, sum := devkey(t)
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := pluginhost.Open(pluginhost.Config{Name: "dev", Path: bin, SHA256: sum,
		Args: []string{"--keys", keys}, Timeout: 20 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pub, err := p.PublicKey(context.Background(), "hot")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background(), 0); err == nil {
		t.Fatal("a zero interval was accepted")
	}
	const every = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, every) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	}()
	waitFor(t, 5*time.Second, "a first ping", func() bool { return !p.Health().Checked.IsZero() && p.Healthy() })
	start := p.Health().Checked
	waitFor(t, 5*time.Second, "a later ping", func() bool { return p.Health().Checked.After(start) })
	if h := p.Health(); !h.Healthy || h.Err != nil || h.Restarts != 0 {
		t.Fatalf("health of a running plugin: %+v", h)
	}

	pid := p.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*every, "the loop to notice the kill", func() bool { return !p.Healthy() })
	if h := p.Health(); h.Err == nil {
		t.Fatalf("unhealthy without an error: %+v", h)
	}
	waitFor(t, 30*time.Second, "the loop to start the plugin again", func() bool { return p.Healthy() })
	h := p.Health()
	if h.Restarts != 1 || h.Err != nil {
		t.Fatalf("health after the restart: %+v", h)
	}
	if np := p.Pid(); np == 0 || np == pid {
		t.Fatalf("plugin pid %d after the kill of %d", np, pid)
	}
	// The call finds the plugin running: no restart of its own.
	sdktest.Check(t, p, sdk.KeyInfo{ID: "hot", PublicKey: pub}, sdktest.Options{Chain: "eth", Network: "devnet"})
	if r := p.Health().Restarts; r != 1 {
		t.Fatalf("%d restarts after the signing, want 1", r)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"plugin health ping failed"`, `"msg":"plugin healthy again"`, `"plugin":"dev"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %s:\n%s", want, out)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTamperedBinaryRefused(t *testing.T) {
	bin, keys, sum := devkey(t)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(bin, b, 0o700); err != nil { //nolint:gosec // test binary
		t.Fatal(err)
	}
	_, err = pluginhost.Open(pluginhost.Config{Name: "dev", Path: bin, SHA256: sum,
		Args: []string{"--keys", keys}}, slog.Default())
	if !errors.Is(err, pluginhost.ErrPinned) {
		t.Fatalf("a binary changed by one byte: %v, want ErrPinned", err)
	}
	if _, err := pluginhost.Open(pluginhost.Config{Name: "dev", Path: bin, SHA256: "abc"}, slog.Default()); err == nil {
		t.Fatal("a malformed sha256 was accepted")
	}
}

func TestPKCS11ThroughHost(t *testing.T) {
	tok := hsmtest.Start(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pkcs11")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/pkcs11").CombinedOutput(); err != nil {
		t.Fatalf("go build pkcs11: %v\n%s", err, out)
	}
	kg := exec.Command(bin, append([]string{"keygen", "-id", "hot"}, tok.Args()...)...) //nolint:gosec // test binary
	kg.Env = tok.Env
	if out, err := kg.CombinedOutput(); err != nil {
		t.Fatalf("pkcs11 keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	p, err := pluginhost.Open(pluginhost.Config{Name: "hsm", Path: bin, SHA256: hex.EncodeToString(h[:]),
		Args: tok.Args(), Env: tok.Env, Timeout: 20 * time.Second}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pub, err := p.PublicKey(context.Background(), "hot")
	if err != nil {
		t.Fatal(err)
	}
	sdktest.Check(t, p, sdk.KeyInfo{ID: "hot", PublicKey: pub}, sdktest.Options{Chain: "eth", Network: "mainnet"})
	sdktest.Run(t, p, sdktest.Options{Chain: "eth", Network: "mainnet"})
}

// TestNoOrphanWhenHostKilled: a host killed with SIGKILL, which runs no
// clean-up of its own, leaves no plugin process behind.
func TestNoOrphanWhenHostKilled(t *testing.T) {
	bin, keys, sum := devkey(t)
	host := filepath.Join(t.TempDir(), "testhost")
	if out, err := exec.Command("go", "build", "-o", host, "./testdata/testhost").CombinedOutput(); err != nil {
		t.Fatalf("go build testhost: %v\n%s", err, out)
	}
	cmd := exec.Command(host, bin, sum, "--keys", keys) //nolint:gosec // test binary
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil || pid <= 0 {
		_ = cmd.Process.Kill()
		t.Fatalf("reading the plugin's pid: %d, %v", pid, err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("plugin %d not running: %v", pid, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Gone, or a zombie waiting for init to reap it.
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || bytes.Contains(st, []byte(") Z ")) {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin %d still runs after its host was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
