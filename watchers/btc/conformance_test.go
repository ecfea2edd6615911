package btc_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

// TestSourceConformanceBTC runs the follow.Source suite against the
// Bitcoin source on a real btcd (regtest), whose wallet pays and spends in
// every mined block and reorganizes with invalidateblock.
func TestSourceConformanceBTC(t *testing.T) {
	followtest.Source(t, func(t *testing.T) followtest.SourceUnderTest {
		const network = "regtest"
		addr, err := btcnode.MiningAddress(network, "conformance")
		require.NoError(t, err)
		node := btctest.Node(t, network, addr)
		w, err := btcnode.NewWallet(node, network, "conformance", 5)
		require.NoError(t, err)
		require.NoError(t, w.Bootstrap())
		src, err := btc.NewSource(btc.Config{Network: network, Clients: 4,
			Endpoints: []btc.EndpointConfig{{Name: "btcd", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue(node.Password())}}}, nil, nil)
		require.NoError(t, err)
		t.Cleanup(src.Close)
		return followtest.SourceUnderTest{Source: src, Chain: chain.BTC, Network: network,
			Mine: func(n int) error {
				for range n {
					if err := w.Step(2); err != nil {
						return err
					}
				}
				return nil
			},
			Reorg: w.Reorg}
	})
}
