package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigCheck: `cordon config check` validates the file as `cordon
// run` does and lists its insecure settings; --strict fails on them.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	chains := "chains:\n  eth:\n    - {network: mainnet, chain_id: 1, endpoints: [{name: geth, url: 'wss://geth.example:8546'}]}\n"
	plain := write("plain.yaml", "kafka: {brokers: ['kafka-1.internal:9092']}\n"+chains)
	var out bytes.Buffer
	require.NoError(t, cmdConfig([]string{"check", "--config", plain}, &out))
	require.Contains(t, out.String(), "warning: kafka.tls.enabled: false with brokers kafka-1.internal:9092 off this host")
	require.Contains(t, out.String(), "valid, 1 warnings")
	out.Reset()
	require.ErrorContains(t, cmdConfig([]string{"check", "--strict", "--config", plain}, &out), "1 warnings")

	safe := write("safe.yaml", "kafka: {brokers: ['kafka-1.internal:9092'], tls: {enabled: true}}\n"+chains)
	out.Reset()
	require.NoError(t, cmdConfig([]string{"check", "--strict", "--config", safe}, &out))
	require.Contains(t, out.String(), "valid, 0 warnings")

	bad := write("bad.yaml", "kafka: {brokers: ['kafka-1.internal']}\n"+chains)
	require.ErrorContains(t, cmdConfig([]string{"check", "--config", bad}, &out), "kafka.brokers[0]")
}
