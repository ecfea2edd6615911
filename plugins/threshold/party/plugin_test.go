package party

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/sdk"
)

func TestPlugin(t *testing.T) {
	f := shares(t)
	s := &f.shares[0]
	p := NewPlugin(s, []string{"regtest", "simnet"}, 0, nil)
	ctx := context.Background()

	d, err := p.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, "threshold", d.Name)
	require.Equal(t, []string{sdk.CapCosign}, d.Capabilities)
	require.Equal(t, []sdk.KeyInfo{{ID: s.KeyID, Curve: sdk.CurveSecp256k1, PublicKey: s.GroupKey, Networks: []string{"regtest", "simnet"}}}, d.Keys)

	k, err := p.PublicKey(ctx, s.KeyID)
	require.NoError(t, err)
	require.Equal(t, s.GroupKey, k)
	_, err = p.PublicKey(ctx, "other")
	require.ErrorIs(t, err, sdk.ErrUnknownKey)

	_, err = p.Sign(ctx, sdk.SignRequest{KeyID: s.KeyID})
	require.ErrorIs(t, err, sdk.ErrRefused)
	require.ErrorContains(t, err, "a share signs only in a session (Cosign)")

	_, err = p.Cosign(ctx, sdk.CosignRequest{
		Session: newSessionID(t), KeyID: s.KeyID, Parties: []string{"p0", "p1"},
		Context: sdk.SignContext{Chain: "btc", Network: "mainnet"},
	}, newMemRouter([]string{"p0", "p1"}).channel("p0"))
	require.ErrorIs(t, err, sdk.ErrRefused)
	require.ErrorContains(t, err, `network "mainnet"`)
}
