package btc_test

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/btc"
)

// FuzzNormalize feeds arbitrary bytes as a raw block. Normalize must never
// panic, must refuse anything btcd's wire refuses, and what it accepts
// must be consistent with wire's own decoding.
func FuzzNormalize(f *testing.F) {
	for _, raw := range mainnetBlocks(f)[:8] {
		f.Add(raw)
	}
	f.Add(bigBlocks(f)[2].raw[:4096])
	f.Add([]byte{})
	net, _ := btc.LookupNetwork("mainnet")
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := btc.Normalize(&net, 1, raw, nil)
		var blk wire.MsgBlock
		wireErr := blk.Deserialize(bytes.NewReader(raw))
		if err != nil {
			require.ErrorIs(t, err, btc.ErrBadBlock)
			return
		}
		require.NoError(t, wireErr, "accepted a block wire refuses")
		require.Len(t, b.Transactions, len(blk.Transactions))
		outs, ins := 0, 0
		for i, tx := range blk.Transactions {
			outs += len(tx.TxOut)
			if i > 0 {
				ins += len(tx.TxIn)
			}
			require.Equal(t, tx.TxHash().String(), b.Transactions[i].Hash)
		}
		require.Len(t, b.Outputs, outs)
		require.Len(t, b.Spends, ins)
	})
}

// FuzzDecodeHeader: arbitrary header bytes never panic and are accepted
// only when they hash to the hash asked for.
func FuzzDecodeHeader(f *testing.F) {
	f.Add(mainnetBlocks(f)[0][:80], false)
	f.Add([]byte{1, 2, 3}, true)
	net, _ := btc.LookupNetwork("mainnet")
	f.Fuzz(func(t *testing.T, raw []byte, flip bool) {
		want, err := btc.BlockHash(raw)
		if err != nil {
			want[0] = 1
		}
		if flip {
			want[31] ^= 0xff
		}
		h, err := btc.DecodeHeader(&net, 7, raw, &want)
		if err != nil {
			return
		}
		require.Len(t, raw, 80)
		require.False(t, flip)
		require.Equal(t, uint64(7), h.Height)
	})
}
