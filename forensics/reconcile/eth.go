package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/cordonhq/cordon/internal/chain"
)

// ETHNode is what the Ethereum check asks the node (an *ethclient.Client).
type ETHNode interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	BalanceAt(ctx context.Context, account common.Address, block *big.Int) (*big.Int, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	CodeAt(ctx context.Context, account common.Address, block *big.Int) ([]byte, error)
}

type account struct{ addr, asset string }

const zeroAddress = "0x0000000000000000000000000000000000000000"

// balanceOf(address) selector.
var balanceOf = []byte{0x70, 0xa0, 0x82, 0x31}

// ETH checks Ethereum balances.
func ETH(ctx context.Context, q Querier, node ETHNode, o Options) (*Report, error) {
	o.Chain = chain.ETH
	if err := o.fill(); err != nil {
		return nil, err
	}
	bs, h, err := canonicalBlocks(ctx, q, o)
	if err != nil {
		return nil, err
	}
	base := h - min(h, o.Blocks)
	rep := &Report{Chain: chain.ETH, Network: o.Network, Height: h, Base: base, Mismatches: []Mismatch{}}
	sameChain := func() error {
		for _, x := range []uint64{base + 1, h} {
			hd, err := node.HeaderByNumber(ctx, new(big.Int).SetUint64(x))
			if errors.Is(err, ethereum.NotFound) {
				return fmt.Errorf("%w: the node has no block %d (reorg under way?)", ErrNotComparable, x)
			}
			if err != nil {
				return fmt.Errorf("reconcile: node block %d: %w", x, err)
			}
			if got := strings.ToLower(hd.Hash().Hex()); got != bs[x].hash {
				return fmt.Errorf("%w: block %d is %s in ClickHouse and %s on the node", ErrNotComparable, x, bs[x].hash, got)
			}
		}
		return nil
	}
	if err := sameChain(); err != nil {
		return nil, err
	}

	delta := map[account]*big.Int{}
	add := func(a account, v *big.Int) {
		d, ok := delta[a]
		if !ok {
			d = new(big.Int)
			delta[a] = d
		}
		d.Add(d, v)
	}
	parse := func(what, s string) (*big.Int, error) {
		if s == "" {
			return new(big.Int), nil
		}
		v, ok := new(big.Int).SetString(s, 10)
		if !ok || v.Sign() < 0 {
			return nil, fmt.Errorf("reconcile: ClickHouse holds %s %q: not a non-negative integer", what, s)
		}
		return v, nil
	}
	// ERC-721 transfers move one token id each: there is no amount to
	// add up (and such contracts need not have balanceOf).
	rows, err := q.Query(ctx, `SELECT from_address, to_address, asset, amount FROM transfers FINAL
		WHERE chain = ? AND network = ? AND standard != ? AND `+window(bs), string(chain.ETH), o.Network, chain.StandardERC721)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read transfers: %w", err)
	}
	for rows.Next() {
		var from, to, asset, amount string
		if err := rows.Scan(&from, &to, &asset, &amount); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reconcile: read transfers: %w", err)
		}
		v, err := parse("transfer amount", amount)
		if err != nil {
			_ = rows.Close()
			return nil, err
		}
		add(account{to, asset}, v)
		add(account{from, asset}, new(big.Int).Neg(v))
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	miner := map[string]block{}
	for _, b := range bs {
		miner[b.hash] = b
	}
	rows, err = q.Query(ctx, `SELECT from_address, ifNull(fee, ''), gas_used, gas_price, block_hash FROM transactions FINAL
		WHERE chain = ? AND network = ? AND `+window(bs), string(chain.ETH), o.Network)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read transactions: %w", err)
	}
	for rows.Next() {
		var from, fee, price, hash string
		var gasUsed uint64
		if err := rows.Scan(&from, &fee, &gasUsed, &price, &hash); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reconcile: read transactions: %w", err)
		}
		f, err := parse("fee", fee)
		if err != nil {
			_ = rows.Close()
			return nil, err
		}
		p, err := parse("gas price", price)
		if err != nil {
			_ = rows.Close()
			return nil, err
		}
		bf, err := parse("base fee", miner[hash].baseFee)
		if err != nil {
			_ = rows.Close()
			return nil, err
		}
		add(account{from, chain.AssetNative}, new(big.Int).Neg(f))
		// The fee recipient earns the priority fee: gas used × (price − base fee).
		tip := new(big.Int).Mul(new(big.Int).SetUint64(gasUsed), new(big.Int).Sub(p, bf))
		add(account{miner[hash].miner, chain.AssetNative}, tip)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	all := make([]account, 0, len(delta))
	for a := range delta {
		all = append(all, a)
	}
	slices.SortFunc(all, func(x, y account) int { return strings.Compare(x.addr+"/"+x.asset, y.addr+"/"+y.asset) })
	rep.Touched = len(all)
	atBase, atH := new(big.Int).SetUint64(base), new(big.Int).SetUint64(h)
	for _, a := range sample(all, o.Sample, o.Seed+h) {
		if a.asset != chain.AssetNative && a.addr == zeroAddress {
			rep.Skipped = append(rep.Skipped, Mismatch{Address: a.addr, Asset: a.asset, Detail: "the zero address mints and burns tokens; it has no balance"})
			continue
		}
		before, err := balance(ctx, node, a, atBase)
		if err != nil && isMissingBlock(err) {
			return nil, fmt.Errorf("%w: the node lost block %d while checking: %w", ErrNotComparable, base, err)
		}
		if err != nil {
			if a.asset != chain.AssetNative {
				rep.Skipped = append(rep.Skipped, Mismatch{Address: a.addr, Asset: a.asset, Detail: "balanceOf failed: " + err.Error()})
				continue
			}
			return nil, fmt.Errorf("reconcile: node balance of %s at block %d (a full node keeps about 128 blocks of state; use an archive node or a smaller --blocks): %w", a.addr, base, err)
		}
		after, err := balance(ctx, node, a, atH)
		if err != nil && isMissingBlock(err) {
			return nil, fmt.Errorf("%w: the node lost block %d while checking: %w", ErrNotComparable, h, err)
		}
		if err != nil {
			return nil, fmt.Errorf("reconcile: node balance of %s (%s) at block %d: %w", a.addr, a.asset, h, err)
		}
		rep.Checked++
		want := new(big.Int).Add(before, delta[a])
		if want.Cmp(after) != 0 {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Address: a.addr, Asset: a.asset, Store: want.String(), Node: after.String(),
				Detail: fmt.Sprintf("balance at %d (%s) + change in ClickHouse (%s) differs from the node's at %d by %s",
					base, before, delta[a], h, new(big.Int).Sub(want, after))})
		}
	}
	// Balances read across a reorg of the window would not compare.
	if err := sameChain(); err != nil {
		return nil, err
	}
	return rep, nil
}

// isMissingBlock tells whether the node answered that it has no such
// block (a reorg removed it while the check ran).
func isMissingBlock(err error) bool {
	return errors.Is(err, ethereum.NotFound) || strings.Contains(err.Error(), "header not found") ||
		strings.Contains(err.Error(), "unknown block")
}

func balance(ctx context.Context, node ETHNode, a account, at *big.Int) (*big.Int, error) {
	who := common.HexToAddress(a.addr)
	if a.asset == chain.AssetNative {
		return node.BalanceAt(ctx, who, at)
	}
	token := common.HexToAddress(a.asset)
	out, err := node.CallContract(ctx, ethereum.CallMsg{To: &token, Data: append(slices.Clone(balanceOf), common.LeftPadBytes(who.Bytes(), 32)...)}, at)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		// No contract at that block yet (deployed within the window):
		// nobody holds the token.
		code, err := node.CodeAt(ctx, token, at)
		if err == nil && len(code) == 0 {
			return new(big.Int), nil
		}
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("balanceOf returned %d bytes, want 32", len(out))
	}
	return new(big.Int).SetBytes(out), nil
}
