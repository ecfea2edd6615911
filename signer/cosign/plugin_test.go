package cosign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/plugins/sdk/sdktest"
	"github.com/cordonhq/cordon/signer/pluginhost"
)

// thresholdPlugin builds plugins/threshold and writes the three share
// files with its keygen command.
func thresholdPlugin(t *testing.T) (bin, sum, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "threshold")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/threshold").CombinedOutput(); err != nil {
		t.Fatalf("go build threshold: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "keygen", "--preparams", preParamsDir, "--out", dir, "--key-id", "hot-tss").CombinedOutput(); err != nil {
		t.Fatalf("threshold keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	h := sha256.Sum256(b)
	return bin, hex.EncodeToString(h[:]), dir
}

// killer kills its plugin's process when the plugin sends its first
// message of a session, while armed: the plugin dies mid-session.
type killer struct {
	*pluginhost.Plugin
	armed atomic.Bool
}

func (k *killer) Cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel) (sdk.Signature, error) {
	return k.Plugin.Cosign(ctx, req, &killChannel{Channel: ch, k: k})
}

type killChannel struct {
	sdk.Channel
	k *killer
}

func (c *killChannel) Send(ctx context.Context, m sdk.PartyMessage) error {
	if c.k.armed.CompareAndSwap(true, false) {
		if pid := c.k.Pid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return c.Channel.Send(ctx, m)
}

func TestGroupThroughPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the plugin")
	}
	bin, sum, dir := thresholdPlugin(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	parties := map[string]sdk.Cosigner{}
	var p1 *killer
	for _, id := range []string{"p0", "p1", "p2"} {
		p, err := pluginhost.Open(pluginhost.Config{
			Name: "tss-" + id, Path: bin, SHA256: sum, Timeout: 20 * time.Second,
			Args: []string{"--share", filepath.Join(dir, "share-"+id+".json"), "--networks", "regtest,simnet", "--session-timeout", "15s"},
		}, log)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		if id == "p1" {
			p1 = &killer{Plugin: p}
			parties[id] = p1
			continue
		}
		parties[id] = p
	}
	ctx := context.Background()
	d, err := parties["p0"].(*pluginhost.Plugin).Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, "threshold", d.Name)
	require.Equal(t, []string{sdk.CapCosign}, d.Capabilities)
	key := d.Keys[0]
	require.Equal(t, "hot-tss", key.ID)

	g, err := New(key.ID, key.PublicKey, parties, log)
	require.NoError(t, err)
	require.NoError(t, g.Check(ctx), "every plugin holds a share of the key")

	start := time.Now()
	sdktest.Check(t, g, groupKey(t, g), sdktest.Options{Chain: "btc", Network: "regtest"})
	t.Logf("signed through three plugin processes in %v", time.Since(start))

	// A network the shares do not sign for is refused by the plugins.
	_, err = g.Sign(ctx, sdk.SignRequest{KeyID: key.ID, Digest: randomDigest(t), Context: sdk.SignContext{Chain: "btc", Network: "mainnet"}})
	require.ErrorIs(t, err, sdk.ErrRefused)

	// p1 dies mid-session: the signing fails, closed.
	pid := p1.Pid()
	require.NotZero(t, pid)
	p1.armed.Store(true)
	_, err = g.Sign(ctx, sdk.SignRequest{KeyID: key.ID, Digest: randomDigest(t), Context: sdk.SignContext{Chain: "btc", Network: "regtest"}})
	require.Error(t, err)
	require.False(t, p1.armed.Load(), "the plugin was killed during the session")
	t.Logf("the signing with a killed party failed: %v", err)

	// Once the host has seen the process exit (go-plugin notices it a
	// moment after the kill), the next signing starts p1 again and
	// succeeds.
	require.Eventually(t, func() bool { return p1.Pid() != pid }, 10*time.Second, 10*time.Millisecond)
	sdktest.Check(t, g, groupKey(t, g), sdktest.Options{Chain: "btc", Network: "regtest"})
	require.NotEqual(t, pid, p1.Pid(), "a new p1 process")
}
