package eth_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

// TestSourceConformance runs the follow.Source suite against the Ethereum
// source on the devnet's real JSON-RPC (a WebSocket and an HTTP endpoint),
// with the header hash and transactions root verified.
func TestSourceConformanceETH(t *testing.T) {
	followtest.Source(t, func(t *testing.T) followtest.SourceUnderTest {
		ctx := context.Background()
		dev, err := devnet.Start(devnet.Config{Seed: "conformance"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = dev.Close() })
		tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{TxPerBlock: 6, Seed: 11}, nil)
		require.NoError(t, err)
		src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID,
			Endpoints: []eth.EndpointConfig{{Name: "devnet-ws", URL: config.SecretValue(dev.WSURL())}, {Name: "devnet-http", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
		require.NoError(t, err)
		t.Cleanup(src.Close)
		mine := func(n int) error {
			for range n {
				if err := tr.Step(ctx, 3); err != nil {
					return err
				}
			}
			return nil
		}
		// Past the first 32-block epoch, so the devnet names a finalized
		// block and the Finalizer checks are not vacuous.
		require.NoError(t, mine(34))
		return followtest.SourceUnderTest{Source: src, Chain: chain.ETH, Network: network, Mine: mine,
			Reorg: func(depth int) error { return tr.Reorg(ctx, depth) }}
	})
}
