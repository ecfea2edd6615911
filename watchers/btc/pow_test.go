package btc_test

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/btc"
)

// mine finds a nonce that gives h valid proof of work for its bits (easy
// targets only: tests use the test networks' limit or a few bits below).
func mine(t testing.TB, h wire.BlockHeader) (wire.BlockHeader, chainhash.Hash) {
	t.Helper()
	target, err := btc.CompactToTarget(h.Bits)
	require.NoError(t, err)
	for n := uint32(0); n < 1<<24; n++ {
		h.Nonce = n
		hash := h.BlockHash()
		if btc.HashToBig(&hash).Cmp(target) <= 0 {
			return h, hash
		}
	}
	t.Fatal("no nonce found")
	return h, chainhash.Hash{}
}

func TestCheckWorkMainnetGenesis(t *testing.T) {
	p := &chaincfg.MainNetParams
	g := p.GenesisBlock.Header
	hash := g.BlockHash()
	require.Equal(t, *p.GenesisHash, hash)
	require.NoError(t, btc.CheckWork(p, 0, &g, &hash, nil), "the real genesis block")

	// Another nonce: the same header with (almost surely) no work at all.
	weak := g
	weak.Nonce++
	wh := weak.BlockHash()
	require.ErrorIs(t, btc.CheckWork(p, 0, &weak, &wh, nil), btc.ErrBadWork)
	require.ErrorContains(t, btc.CheckWork(p, 0, &weak, &wh, nil), "is above the target")

	// Bits easier than mainnet allows, whatever the hash.
	easy := g
	easy.Bits = 0x207fffff
	eh := easy.BlockHash()
	require.ErrorContains(t, btc.CheckWork(p, 0, &easy, &eh, nil), "above the network's limit")
}

func TestCompactToTarget(t *testing.T) {
	for _, tc := range []struct {
		bits uint32
		want string // hex, or "" for an error
	}{
		{0x1d00ffff, "ffff0000000000000000000000000000000000000000000000000000"},
		{0x207fffff, "7fffff0000000000000000000000000000000000000000000000000000000000"},
		{0x03123456, "123456"},
		{0x02123456, "1234"},
		{0x01003456, ""}, // zero
		{0x04923456, ""}, // negative
		{0xff123456, ""}, // overflow
		{0x00000000, ""},
	} {
		got, err := btc.CompactToTarget(tc.bits)
		if tc.want == "" {
			require.ErrorIs(t, err, btc.ErrBadWork, "bits %08x", tc.bits)
			continue
		}
		require.NoError(t, err, "bits %08x", tc.bits)
		require.Equal(t, tc.want, got.Text(16), "bits %08x", tc.bits)
	}
}

// TestCheckWorkBits: a header's bits must follow its parent's.
func TestCheckWorkBits(t *testing.T) {
	// A mainnet-like network (retargeting, no minimum-difficulty rule)
	// with simnet's limit, so that the test can mine.
	retarget := chaincfg.MainNetParams
	retarget.PowLimit = chaincfg.SimNetParams.PowLimit
	retarget.PowLimitBits = chaincfg.SimNetParams.PowLimitBits
	base := time.Unix(1_700_000_000, 0)
	parent := wire.BlockHeader{Version: 4, Bits: 0x1f7fffff, Timestamp: base}
	parent, parentHash := mine(t, parent)
	child := func(bits uint32, after time.Duration) (wire.BlockHeader, chainhash.Hash) {
		return mine(t, wire.BlockHeader{Version: 4, PrevBlock: parentHash, Bits: bits, Timestamp: base.Add(after)})
	}
	for _, tc := range []struct {
		name   string
		params *chaincfg.Params
		height uint64
		bits   uint32
		after  time.Duration
		err    string
	}{
		{"same bits", &retarget, 101, 0x1f7fffff, time.Minute, ""},
		{"easier within a period", &retarget, 101, 0x2000ffff, time.Minute, "within a difficulty period"},
		{"harder within a period", &retarget, 101, 0x1f3fffff, time.Minute, "within a difficulty period"},
		{"retarget 2x harder", &retarget, 2016, 0x1f3fffff, time.Minute, ""},
		{"retarget 4x easier", &retarget, 2016, 0x2001ffff, time.Minute, ""},
		{"retarget 8x harder", &retarget, 4032, 0x1f0fffff, time.Minute, "moves more than 4×"},
		{"regtest never retargets", &chaincfg.RegressionNetParams, 2016, 0x1f3fffff, time.Minute, "without retargeting"},
		{"simnet min-difficulty after 20 minutes", &chaincfg.SimNetParams, 101, 0x207fffff, 21 * time.Minute, ""},
		{"simnet min-difficulty too soon", &chaincfg.SimNetParams, 101, 0x207fffff, 19 * time.Minute, "within a difficulty period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, hash := child(tc.bits, tc.after)
			err := btc.CheckWork(tc.params, tc.height, &h, &hash, &parent)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, btc.ErrBadWork)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func FuzzCheckWork(f *testing.F) {
	var buf bytes.Buffer
	g := chaincfg.MainNetParams.GenesisBlock.Header
	_ = g.Serialize(&buf)
	f.Add(buf.Bytes(), buf.Bytes(), uint64(0))
	f.Add(buf.Bytes(), buf.Bytes(), uint64(2016))
	f.Fuzz(func(t *testing.T, raw, parentRaw []byte, height uint64) {
		var h, p wire.BlockHeader
		if h.Deserialize(bytes.NewReader(raw)) != nil || p.Deserialize(bytes.NewReader(parentRaw)) != nil {
			return
		}
		for _, params := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.SimNetParams, &chaincfg.RegressionNetParams} {
			hash := h.BlockHash()
			if btc.CheckWork(params, height, &h, &hash, &p) != nil {
				continue
			}
			target, err := btc.CompactToTarget(h.Bits)
			require.NoError(t, err)
			require.LessOrEqual(t, btc.HashToBig(&hash).Cmp(target), 0, "accepted a hash above its target")
			require.LessOrEqual(t, target.Cmp(params.PowLimit), 0, "accepted a target above the limit")
			require.Positive(t, target.Cmp(big.NewInt(0)))
		}
	})
}
