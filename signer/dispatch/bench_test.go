package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/plugins/pkcs11/hsmtest"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/pluginhost"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// BenchmarkApprovalToBroadcast measures the time from a withdrawal's
// last approval to its transaction's broadcast on the devnet: the
// dispatcher builds (node calls: nonce, gas, fees), the gate hands it on
// with its request on Kafka, the signer's service checks it and signs
// through a plugin process (the dev key, or SoftHSM2 through the pkcs11
// plugin), records it, and the dispatcher verifies and broadcasts it.
// One run of 200 withdrawals per plugin, p50 and p99 reported:
//
//	go test ./signer/dispatch/ -run '^$' -bench ApprovalToBroadcast -benchtime 1x
func BenchmarkApprovalToBroadcast(b *testing.B) {
	for _, name := range []string{"devkey", "pkcs11"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				p50, p99 := approvalToBroadcast(b, name, 200)
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			}
		})
	}
}

func buildPlugin(tb testing.TB, name string) (path, sum string) {
	path = filepath.Join(tb.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", path, "./plugins/"+name)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "%s", out)
	s, err := sha256Of(path)
	require.NoError(tb, err)
	return path, s
}

func approvalToBroadcast(b *testing.B, plugin string, n int) (p50, p99 time.Duration) {
	b.Helper()
	b.StopTimer()
	ctx := context.Background()
	bin, sum := buildPlugin(b, plugin)
	var pc pluginhost.Config
	switch plugin {
	case "devkey":
		kf := filepath.Join(b.TempDir(), "keys.json")
		require.NoError(b, keys.Generate(kf, []string{"eth"}))
		pc = pluginhost.Config{Name: plugin, Path: bin, SHA256: sum, Args: []string{"--keys", kf}}
	default:
		tok := hsmtest.Start(b)
		out, err := func() ([]byte, error) {
			cmd := exec.Command(bin, append([]string{"keygen", "-id", "eth"}, tok.Args()...)...)
			cmd.Env = tok.Env
			return cmd.Output()
		}()
		require.NoError(b, err)
		require.True(b, strings.HasPrefix(string(out), "eth\t"), "%s", out)
		pc = pluginhost.Config{Name: plugin, Path: bin, SHA256: sum, Args: tok.Args(), Env: tok.Env}
	}
	p, err := pluginhost.Open(pc, testLog(b))
	require.NoError(b, err)
	b.Cleanup(p.Close)
	pub, err := p.PublicKey(ctx, "eth")
	require.NoError(b, err)

	dev, brokers := devnetStream(b, "bench")
	r := newRig(b)
	r.connect(brokers)
	r.cfg = Config{Wallets: wallet.Config{ETH: []wallet.ETHWallet{{Name: "eth-hot", Network: "devnet", ChainID: devnet.ChainID,
		Key: wallet.KeyRef{Plugin: plugin, KeyID: "eth", PublicKey: hex.EncodeToString(pub)}, MaxFeePerGas: "500000000000", MaxPriorityFeePerGas: "5000000000"}}},
		Confirmations: map[string]int{"eth/devnet": 1}, Interval: time.Second}
	hot, err := r.cfg.Wallets.ETH[0].Address()
	require.NoError(b, err)
	fund(b, dev, hot, new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether)))
	r.startGate("eth/devnet")
	r.startSignerWith([]vault.Limit{{Chain: "eth", Network: "devnet", Asset: intent.Native, PerWithdrawal: "1000000000000000000"}},
		map[string]vault.Signer{plugin: p})
	nodes, err := DialETH(ctx, []string{dev.HTTPURL()})
	require.NoError(b, err)
	b.Cleanup(nodes.Close)
	_, d := r.startDispatcherD(Options{ETH: map[string]ETHNode{"devnet": nodes}})
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for mctx.Err() == nil {
			dev.Commit()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	// One withdrawal first: the block stream read, every connection up.
	warm := r.withdraw("warm", "eth", "devnet", "1000", "0x00000000000000000000000000000000c0ffee00")
	r.waitStatus(warm, gate.StatusBroadcast, time.Minute, nil)
	var lat []time.Duration
	b.StartTimer()
	for i := range n {
		id := r.withdraw(fmt.Sprint("w", i), "eth", "devnet", "1000000", fmt.Sprintf("0x00000000000000000000000000000000c0f%05d", i))
		t0 := time.Now()
		d.Wake() // the gate's commit of the last approval does this in cordon
		for r.gate.get(id).Status != gate.StatusBroadcast {
			require.Less(b, time.Since(t0), time.Minute, "withdrawal %s: %s", id, r.gate.get(id).Reason)
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

func sha256Of(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}
