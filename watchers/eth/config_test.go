package eth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/eth"
)

func TestConfigVerifies(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		name             string
		header, txRoot   *bool
		wantHdr, wantTxs bool
	}{
		{"unset: both checks", nil, nil, true, true},
		{"tx root follows the header hash", &off, nil, false, false},
		{"header hash only", nil, &off, true, false},
		{"both set", &on, &on, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, r := eth.Config{VerifyHeaderHash: tc.header, VerifyTxRoot: tc.txRoot}.Verifies()
			require.Equal(t, tc.wantHdr, h)
			require.Equal(t, tc.wantTxs, r)
		})
	}
}
