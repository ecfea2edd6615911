package btc

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// ErrBadWork is wrapped by every proof-of-work failure of a header.
var ErrBadWork = errors.New("invalid proof of work")

func badWork(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadWork, fmt.Sprintf(format, args...))
}

// CompactToTarget decodes a header's bits (the compact form of its
// target). A negative, zero or overflowing target is an error.
func CompactToTarget(bits uint32) (*big.Int, error) {
	mantissa := bits & 0x007fffff
	exponent := uint(bits >> 24)
	if bits&0x00800000 != 0 && mantissa != 0 {
		return nil, badWork("bits %08x: negative target", bits)
	}
	t := new(big.Int).SetUint64(uint64(mantissa))
	if exponent <= 3 {
		t.Rsh(t, 8*(3-exponent))
	} else {
		if exponent > 34 {
			return nil, badWork("bits %08x: target overflows 256 bits", bits)
		}
		t.Lsh(t, 8*(exponent-3))
	}
	if t.Sign() == 0 {
		return nil, badWork("bits %08x: zero target", bits)
	}
	if t.BitLen() > 256 {
		return nil, badWork("bits %08x: target overflows 256 bits", bits)
	}
	return t, nil
}

// HashToBig is a block hash as the number proof of work compares with the
// target (the hash bytes read little-endian).
func HashToBig(h *chainhash.Hash) *big.Int {
	var be [32]byte
	for i := range h {
		be[31-i] = h[i]
	}
	return new(big.Int).SetBytes(be[:])
}

// Work is the expected number of hashes a header of these bits took:
// 2^256 / (target+1).
func Work(bits uint32) (*big.Int, error) {
	t, err := CompactToTarget(bits)
	if err != nil {
		return nil, err
	}
	return new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 256), t.Add(t, big.NewInt(1))), nil
}

// CheckWork checks the proof of work of the header at height on params:
// its hash is at most the target its bits encode, that target is at most
// the network's proof-of-work limit, and, when parent (the header it
// builds on) is known, its bits follow the parent's:
//
//   - within a difficulty period, bits equal the parent's;
//   - at a retarget boundary (height a multiple of the period, 2016
//     blocks), the target is within the network's adjustment factor (4×)
//     of the parent's, either way, and at most the limit;
//   - on networks without retargeting (regtest), bits never change;
//   - on networks with the minimum-difficulty rule (testnet3, simnet,
//     regtest): a block more than MinDiffReductionTime after its parent may
//     have the limit's bits, and a block whose parent has them may return
//     to any target at most the limit (the rule returns to the last
//     regular difficulty, which needs headers further back than the
//     parent; that step is not checked).
//
// The exact retarget value (which needs the period's first header) is not
// recomputed; the bound holds the difficulty an endpoint can claim to 4×
// per period, and the quorum decides between branches.
func CheckWork(p *chaincfg.Params, height uint64, hdr *wire.BlockHeader, hash *chainhash.Hash, parent *wire.BlockHeader) error {
	target, err := CompactToTarget(hdr.Bits)
	if err != nil {
		return err
	}
	if target.Cmp(p.PowLimit) > 0 {
		return badWork("target %064x of bits %08x is above the network's limit %064x", target, hdr.Bits, p.PowLimit)
	}
	if HashToBig(hash).Cmp(target) > 0 {
		return badWork("hash %s is above the target %064x of bits %08x", hash, target, hdr.Bits)
	}
	if parent == nil || hdr.Bits == parent.Bits {
		return nil
	}
	if p.PoWNoRetargeting {
		return badWork("bits %08x differ from the parent's %08x on a network without retargeting", hdr.Bits, parent.Bits)
	}
	if p.ReduceMinDifficulty {
		if hdr.Bits == p.PowLimitBits && hdr.Timestamp.Sub(parent.Timestamp) > p.MinDiffReductionTime {
			return nil // a minimum-difficulty block after a long gap
		}
		if parent.Bits == p.PowLimitBits {
			return nil // back from a minimum-difficulty block (see above)
		}
	}
	period := uint64(p.TargetTimespan / p.TargetTimePerBlock)
	if period == 0 || height%period != 0 {
		return badWork("bits %08x differ from the parent's %08x within a difficulty period (height %d, period %d)", hdr.Bits, parent.Bits, height, period)
	}
	pt, err := CompactToTarget(parent.Bits)
	if err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	factor := big.NewInt(p.RetargetAdjustmentFactor)
	hi := new(big.Int).Mul(pt, factor)
	lo := new(big.Int).Div(pt, factor)
	lo.Sub(lo, new(big.Int).Rsh(lo, 15)) // the compact form truncates a target by less than 2^-15
	if target.Cmp(hi) > 0 || target.Cmp(lo) < 0 {
		return badWork("bits %08x at retarget height %d: target %064x moves more than %d× from the parent's %064x",
			hdr.Bits, height, target, p.RetargetAdjustmentFactor, pt)
	}
	return nil
}
