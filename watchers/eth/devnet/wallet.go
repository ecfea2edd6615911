package devnet

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// ContractWallet is a deployed DevWallet: a multisig-style proxy whose
// implementation is the EIP-1967 slot, with its logic and owners.
type ContractWallet struct {
	Proxy, Logic common.Address
	Owners       []common.Address
}

// ImplementationSlot is the EIP-1967 implementation slot.
var ImplementationSlot = common.HexToHash("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc")

// DeployWallet deploys a contract wallet from account deployer with the
// given owners (account indexes) and funds it with wei and token units
// from the deployer, mining the blocks it needs (call it before Run).
func (t *Traffic) DeployWallet(ctx context.Context, deployer int, owners []int, wei, units *big.Int) (*ContractWallet, error) {
	logic, err := loadContract("DevWalletLogic")
	if err != nil {
		return nil, err
	}
	proxy, err := loadContract("DevWallet")
	if err != nil {
		return nil, err
	}
	w := &ContractWallet{}
	for _, o := range owners {
		w.Owners = append(w.Owners, t.d.addrs[o])
	}
	from := t.d.addrs[deployer]
	w.Logic = crypto.CreateAddress(from, t.nonce[deployer])
	if _, err := t.submit(ctx, deployer, nil, nil, logic.code, 2_000_000); err != nil {
		return nil, fmt.Errorf("devnet: deploy the wallet's logic: %w", err)
	}
	args, err := proxy.abi.Pack("", w.Logic, w.Owners)
	if err != nil {
		return nil, err
	}
	w.Proxy = crypto.CreateAddress(from, t.nonce[deployer])
	if _, err := t.submit(ctx, deployer, nil, nil, append(append([]byte{}, proxy.code...), args...), 2_000_000); err != nil {
		return nil, fmt.Errorf("devnet: deploy the wallet: %w", err)
	}
	t.d.Commit()
	t.Stats.Blocks.Add(1)
	// A contract's receive() costs more than a plain payment's 21,000.
	if _, err := t.submit(ctx, deployer, &w.Proxy, wei, nil, 60_000); err != nil {
		return nil, fmt.Errorf("devnet: fund the wallet: %w", err)
	}
	if _, err := t.PayToken(ctx, deployer, w.Proxy, units); err != nil {
		return nil, fmt.Errorf("devnet: fund the wallet with tokens: %w", err)
	}
	t.d.Commit()
	t.Stats.Blocks.Add(1)
	code, err := t.d.client.CodeAt(ctx, w.Proxy, nil)
	if err != nil {
		return nil, err
	}
	if len(code) == 0 {
		return nil, errors.New("devnet: the wallet has no code after its deployment")
	}
	bal, err := t.d.client.BalanceAt(ctx, w.Proxy, nil)
	if err != nil {
		return nil, err
	}
	if bal.Cmp(wei) < 0 {
		return nil, fmt.Errorf("devnet: the wallet holds %v wei after its funding, want %v", bal, wei)
	}
	return w, nil
}

// Call is a transaction from account from to the wallet's logic (through
// the proxy): method and its arguments.
func (t *Traffic) walletCall(ctx context.Context, from int, w *ContractWallet, method string, args ...any) (common.Hash, error) {
	logic, err := loadContract("DevWalletLogic")
	if err != nil {
		return common.Hash{}, err
	}
	data, err := logic.abi.Pack(method, args...)
	if err != nil {
		return common.Hash{}, err
	}
	return t.submit(ctx, from, &w.Proxy, nil, data, 300_000)
}

// WalletPay has owner pay wei from the wallet to to (a genuine outflow).
func (t *Traffic) WalletPay(ctx context.Context, owner int, w *ContractWallet, to common.Address, wei *big.Int) (common.Hash, error) {
	return t.walletCall(ctx, owner, w, "pay", to, wei)
}

// SetOwners has owner replace the wallet's owners through execute (a
// call of the wallet to itself, as a multisig's owner change is).
func (t *Traffic) SetOwners(ctx context.Context, owner int, w *ContractWallet, owners []common.Address) (common.Hash, error) {
	logic, err := loadContract("DevWalletLogic")
	if err != nil {
		return common.Hash{}, err
	}
	inner, err := logic.abi.Pack("setOwners", owners)
	if err != nil {
		return common.Hash{}, err
	}
	return t.walletCall(ctx, owner, w, "execute", w.Proxy, new(big.Int), inner, uint8(0))
}

// DelegateTo has owner execute a delegatecall from the wallet into
// target with data (what a tampered front end asks an owner to approve).
func (t *Traffic) DelegateTo(ctx context.Context, owner int, w *ContractWallet, target common.Address, data []byte) (common.Hash, error) {
	return t.walletCall(ctx, owner, w, "execute", target, new(big.Int), data, uint8(1))
}

// Attack is the February 2025 theft replayed on a contract wallet.
type Attack struct {
	// Thief is the account that deploys the attacker's contracts and
	// sweeps; Upgrader and Logic are those contracts.
	Thief           common.Address
	Upgrader, Logic common.Address
	// Takeover is the tampered front end's transaction: an owner's
	// delegatecall into Upgrader, which rewrites the implementation slot;
	// Sweep moves everything to Hops[0]; Peel the hops after it.
	Takeover, Sweep common.Hash
	Peel            []common.Hash
	// Hops are the fresh addresses the funds went through; Exits the
	// small amounts peeled off at each hop.
	Hops, Exits []common.Address
}

// attackSteps are the attack's steps, one a block.
func (t *Traffic) attackSteps(w *ContractWallet, owner, thief int, hops int, a *Attack, mu *sync.Mutex) []func(ctx context.Context) error {
	keys := Keys(fmt.Sprintf("attack-%s", w.Proxy.Hex()), 2*hops+1)
	hopKeys := keys[:hops+1]
	for i, k := range keys {
		if i <= hops {
			a.Hops = append(a.Hops, crypto.PubkeyToAddress(k.PublicKey))
		} else {
			a.Exits = append(a.Exits, crypto.PubkeyToAddress(k.PublicKey))
		}
	}
	a.Thief = t.d.addrs[thief]
	return []func(ctx context.Context) error{
		func(ctx context.Context) error { // the attacker's contracts
			up, err := loadContract("DevAttacker")
			if err != nil {
				return err
			}
			lg, err := loadContract("DevAttackerLogic")
			if err != nil {
				return err
			}
			mu.Lock()
			a.Upgrader = crypto.CreateAddress(a.Thief, t.nonce[thief])
			mu.Unlock()
			if _, err := t.submit(ctx, thief, nil, nil, up.code, 500_000); err != nil {
				return err
			}
			mu.Lock()
			a.Logic = crypto.CreateAddress(a.Thief, t.nonce[thief])
			mu.Unlock()
			_, err = t.submit(ctx, thief, nil, nil, lg.code, 1_000_000)
			return err
		},
		func(ctx context.Context) error { // the tampered front end: an owner's delegatecall
			up, err := loadContract("DevAttacker")
			if err != nil {
				return err
			}
			data, err := up.abi.Pack("upgrade", a.Logic)
			if err != nil {
				return err
			}
			h, err := t.DelegateTo(ctx, owner, w, a.Upgrader, data)
			mu.Lock()
			a.Takeover = h
			mu.Unlock()
			return err
		},
		func(ctx context.Context) error { // the sweep
			lg, err := loadContract("DevAttackerLogic")
			if err != nil {
				return err
			}
			data, err := lg.abi.Pack("sweep", t.Token, a.Hops[0])
			if err != nil {
				return err
			}
			h, err := t.submit(ctx, thief, &w.Proxy, nil, data, 300_000)
			mu.Lock()
			a.Sweep = h
			mu.Unlock()
			return err
		},
		func(ctx context.Context) error { // the peel chain, one hop a block from here on
			for i := range hops {
				if err := t.peel(ctx, hopKeys[i], a.Hops[i+1], a.Exits[i], a, mu); err != nil {
					return err
				}
				t.d.Commit()
				t.Stats.Blocks.Add(1)
			}
			return nil
		},
	}
}

// peel moves a hop's funds on: a tenth of its ether to exit, the rest
// (less gas) and all its tokens to next.
func (t *Traffic) peel(ctx context.Context, k *ecdsa.PrivateKey, next, exit common.Address, a *Attack, mu *sync.Mutex) error {
	from := crypto.PubkeyToAddress(k.PublicKey)
	bal, err := t.d.client.BalanceAt(ctx, from, nil)
	if err != nil {
		return err
	}
	units, err := t.tokenBalance(ctx, from)
	if err != nil {
		return err
	}
	gasCost := new(big.Int).Mul(t.feeCap, big.NewInt(300_000))
	if bal.Cmp(gasCost) <= 0 {
		return fmt.Errorf("devnet: hop %s holds too little to move on", from)
	}
	rest := new(big.Int).Sub(bal, gasCost)
	cut := new(big.Int).Div(rest, big.NewInt(10))
	nonce, err := t.d.PendingNonce(ctx, from)
	if err != nil {
		return err
	}
	send := func(to common.Address, value *big.Int, data []byte, gas uint64) error {
		tx, err := types.SignNewTx(k, t.signer, &types.DynamicFeeTx{ChainID: big.NewInt(ChainID), Nonce: nonce,
			GasTipCap: t.tip, GasFeeCap: t.feeCap, Gas: gas, To: &to, Value: value, Data: data})
		if err != nil {
			return err
		}
		if err := t.d.client.SendTransaction(ctx, tx); err != nil {
			return err
		}
		nonce++
		t.Stats.Txs.Add(1)
		mu.Lock()
		a.Peel = append(a.Peel, tx.Hash())
		mu.Unlock()
		return nil
	}
	if units.Sign() > 0 {
		data, err := t.token.abi.Pack("transfer", next, units)
		if err != nil {
			return err
		}
		if err := send(t.Token, nil, data, 250_000); err != nil {
			return err
		}
	}
	if err := send(exit, cut, nil, 21_000); err != nil {
		return err
	}
	return send(next, new(big.Int).Sub(rest, cut), nil, 21_000)
}

func (t *Traffic) tokenBalance(ctx context.Context, a common.Address) (*big.Int, error) {
	data, err := t.token.abi.Pack("balanceOf", a)
	if err != nil {
		return nil, err
	}
	out, err := t.d.client.CallContract(ctx, ethereum.CallMsg{To: &t.Token, Data: data}, nil)
	if err != nil {
		return nil, err
	}
	if len(out) != 32 {
		return nil, errors.New("devnet: balanceOf: not a uint256")
	}
	return new(big.Int).SetBytes(out), nil
}

// ScheduleAttack queues the attack on w for Run, one step a block
// starting at the next block: the thief's contracts, the owner's
// delegatecall (the takeover), the sweep to a fresh address, then hops
// blocks of peeling. The returned Attack fills in as the steps run (read
// it with the returned func, which copies it under the lock).
func (t *Traffic) ScheduleAttack(w *ContractWallet, owner, thief, hops int) func() Attack {
	a := &Attack{}
	var mu sync.Mutex
	t.Schedule(t.attackSteps(w, owner, thief, hops, a, &mu)...)
	return func() Attack {
		mu.Lock()
		defer mu.Unlock()
		c := *a
		c.Peel = append([]common.Hash(nil), a.Peel...)
		return c
	}
}

// RunAttack runs the attack's steps now, one block each (for tests that
// drive the devnet themselves).
func (t *Traffic) RunAttack(ctx context.Context, w *ContractWallet, owner, thief, hops int) (Attack, error) {
	a := &Attack{}
	var mu sync.Mutex
	for _, step := range t.attackSteps(w, owner, thief, hops, a, &mu) {
		if err := step(ctx); err != nil {
			return *a, err
		}
		t.d.Commit()
		t.Stats.Blocks.Add(1)
	}
	return *a, nil
}

// Schedule queues steps for Run: one runs before each block's traffic,
// in Run's goroutine (so they share its account nonces).
func (t *Traffic) Schedule(steps ...func(ctx context.Context) error) {
	t.smu.Lock()
	t.steps = append(t.steps, steps...)
	t.smu.Unlock()
}

func (t *Traffic) nextStep() func(ctx context.Context) error {
	t.smu.Lock()
	defer t.smu.Unlock()
	if len(t.steps) == 0 {
		return nil
	}
	s := t.steps[0]
	t.steps = t.steps[1:]
	return s
}

// Approve has account i let spender move units of the devnet token.
func (t *Traffic) Approve(ctx context.Context, i int, spender common.Address, units *big.Int) (common.Hash, error) {
	data, err := t.token.abi.Pack("approve", spender, units)
	if err != nil {
		return common.Hash{}, err
	}
	return t.submit(ctx, i, &t.Token, nil, data, 100_000)
}

// PayFrom sends wei from key's account (not one of the devnet's) to to.
func (t *Traffic) PayFrom(ctx context.Context, k *ecdsa.PrivateKey, to common.Address, wei *big.Int) (common.Hash, error) {
	nonce, err := t.d.PendingNonce(ctx, crypto.PubkeyToAddress(k.PublicKey))
	if err != nil {
		return common.Hash{}, err
	}
	tx, err := types.SignNewTx(k, t.signer, &types.DynamicFeeTx{ChainID: big.NewInt(ChainID), Nonce: nonce,
		GasTipCap: t.tip, GasFeeCap: t.feeCap, Gas: 21_000, To: &to, Value: wei})
	if err != nil {
		return common.Hash{}, err
	}
	t.Stats.Txs.Add(1)
	return tx.Hash(), t.d.client.SendTransaction(ctx, tx)
}

// Ether is n ether in wei.
func Ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.Ether)) }
