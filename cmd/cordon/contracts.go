package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/detect/rules"
)

// ethContracts reads contract wallets' state for detection from every
// configured endpoint of their network: the storage word and owners at
// the block, by hash, must be the same on all that answer (endpoints
// that disagree make the wallet unreadable, which alerts: a lying node
// must not hide a takeover), and the delegatecalls of a transaction come
// from the first endpoint that traces it (debug_traceTransaction with
// the callTracer; providers often turn the debug API off).
type ethContracts struct {
	nets map[string][]*rpc.Client
}

// contractReader dials the Ethereum endpoints for detection's chain
// reads: the contract wallets' state and the approvals' call data (nil
// when no Ethereum network is configured).
func contractReader(cfg config.Config) (*ethContracts, error) {
	if len(cfg.Chains.ETH) == 0 {
		if len(cfg.Detect.Rules.ContractWallets) > 0 {
			return nil, errors.New("detect.rules.contract_wallets: no Ethereum network is configured (chains.eth)")
		}
		return nil, nil
	}
	c := &ethContracts{nets: map[string][]*rpc.Client{}}
	for _, e := range cfg.Chains.ETH {
		for _, ep := range e.Endpoints {
			var opts []rpc.ClientOption
			for k, v := range ep.Headers {
				opts = append(opts, rpc.WithHeader(k, v.Value()))
			}
			cl, err := rpc.DialOptions(context.Background(), ep.URL.Value(), opts...)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("detect: contract wallets: endpoint %s of %s: %w", ep.Name, e.Config.Network, err)
			}
			c.nets[e.Config.Network] = append(c.nets[e.Config.Network], cl)
		}
	}
	for i, w := range cfg.Detect.Rules.ContractWallets {
		if len(c.nets[w.Network]) == 0 {
			c.Close()
			return nil, fmt.Errorf("detect.rules.contract_wallets[%d].network: %q has no endpoints (chains.eth)", i, w.Network)
		}
	}
	return c, nil
}

// Close closes the clients.
func (c *ethContracts) Close() {
	for _, cls := range c.nets {
		for _, cl := range cls {
			cl.Close()
		}
	}
}

// agreed asks every endpoint of network with call, all at once, and
// wants the answers the same.
func (c *ethContracts) agreed(network string, call func(context.Context, *rpc.Client) (string, error)) (string, error) {
	cls := c.nets[network]
	vals := make([]string, len(cls))
	errs := make([]error, len(cls))
	var wg sync.WaitGroup
	for i, cl := range cls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := call(ctx, cl)
			if err != nil {
				err = fmt.Errorf("endpoint %d: %w", i+1, err)
			}
			vals[i], errs[i] = v, err
		})
	}
	wg.Wait()
	var answers []string
	for i := range cls {
		if errs[i] == nil {
			answers = append(answers, vals[i])
		}
	}
	if len(answers) == 0 {
		return "", fmt.Errorf("no endpoint of %s answered: %w", network, errors.Join(errs...))
	}
	slices.Sort(answers)
	if answers[0] != answers[len(answers)-1] {
		return "", fmt.Errorf("the endpoints of %s disagree: %s", network, strings.Join(slices.Compact(answers), " vs "))
	}
	return answers[0], nil
}

// atHash names the block by hash (EIP-1898), canonical or not: a block
// that a reorg removed after the watcher published it is still read as
// it was (its alerts are retracted when its removal arrives), as long as
// the node keeps its state.
func atHash(blockHash string) map[string]any {
	return map[string]any{"blockHash": blockHash}
}

// accountProof is the part of eth_getProof's answer read here.
type accountProof struct {
	CodeHash     common.Hash `json:"codeHash"`
	StorageHash  common.Hash `json:"storageHash"`
	StorageProof []struct {
		Value *hexutil.Big `json:"value"`
	} `json:"storageProof"`
}

// emptyCode is the code hash of an account without code.
var emptyCode = crypto.Keccak256Hash(nil)

// Account is one eth_getProof per endpoint: the slot's word, the
// storage root and the code hash, all from the same state.
func (c *ethContracts) Account(network, addr, slot, blockHash string) (rules.ContractAccount, error) {
	v, err := c.agreed(network, func(ctx context.Context, cl *rpc.Client) (string, error) {
		var p accountProof
		if err := cl.CallContext(ctx, &p, "eth_getProof", addr, []string{slot}, atHash(blockHash)); err != nil {
			return "", err
		}
		if len(p.StorageProof) != 1 || p.StorageProof[0].Value == nil {
			return "", fmt.Errorf("eth_getProof of %s: no value for slot %s", addr, slot)
		}
		n := p.StorageProof[0].Value.ToInt()
		if n.Sign() < 0 || n.BitLen() > 256 {
			return "", fmt.Errorf("eth_getProof of %s: slot %s holds no 32-byte word", addr, slot)
		}
		return strings.ToLower(common.BigToHash(n).Hex() + " " + p.StorageHash.Hex() + " " + p.CodeHash.Hex()), nil
	})
	if err != nil {
		return rules.ContractAccount{}, err
	}
	f := strings.Fields(v)
	if f[2] == strings.ToLower(emptyCode.Hex()) || f[2] == strings.ToLower(common.Hash{}.Hex()) {
		return rules.ContractAccount{}, rules.ErrNotDeployed
	}
	return rules.ContractAccount{Word: f[0], Storage: f[1], Code: f[2]}, nil
}

// getOwners is Safe's getOwners() selector.
var getOwners = hexutil.Encode(crypto.Keccak256([]byte("getOwners()"))[:4])

var addressList = func() abi.Arguments {
	t, err := abi.NewType("address[]", "", nil)
	if err != nil {
		panic(err)
	}
	return abi.Arguments{{Type: t}}
}()

func (c *ethContracts) Owners(network, addr, blockHash string) ([]string, error) {
	v, err := c.agreed(network, func(ctx context.Context, cl *rpc.Client) (string, error) {
		var out hexutil.Bytes
		err := cl.CallContext(ctx, &out, "eth_call", map[string]any{"to": addr, "data": getOwners}, atHash(blockHash))
		return hexutil.Encode(out), err
	})
	if err != nil {
		return nil, err
	}
	vals, err := addressList.Unpack(common.FromHex(v))
	if err != nil {
		return nil, fmt.Errorf("getOwners() of %s: not an address list: %w", addr, err)
	}
	if len(vals) != 1 {
		return nil, fmt.Errorf("getOwners() of %s: not an address list", addr)
	}
	addrs, ok := vals[0].([]common.Address)
	if !ok {
		return nil, fmt.Errorf("getOwners() of %s: not an address list", addr)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = strings.ToLower(a.Hex())
	}
	return out, nil
}

// callFrame is a frame of go-ethereum's callTracer output.
type callFrame struct {
	Type  string      `json:"type"`
	From  string      `json:"from"`
	To    string      `json:"to"`
	Calls []callFrame `json:"calls"`
}

func (c *ethContracts) DelegateCalls(network, tx string) ([][2]string, error) {
	var errs []error
	for i, cl := range c.nets[network] {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var top callFrame
		err := cl.CallContext(ctx, &top, "debug_traceTransaction", tx, map[string]any{"tracer": "callTracer"})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %d: %w", i+1, err))
			continue
		}
		var out [][2]string
		var walk func(f *callFrame, depth int)
		walk = func(f *callFrame, depth int) {
			if depth > 1100 { // the EVM's call depth is 1024
				return
			}
			if f.Type == "DELEGATECALL" {
				out = append(out, [2]string{strings.ToLower(f.From), strings.ToLower(f.To)})
			}
			for i := range f.Calls {
				walk(&f.Calls[i], depth+1)
			}
		}
		walk(&top, 0)
		return out, nil
	}
	return nil, fmt.Errorf("no endpoint of %s traced %s (debug_traceTransaction with the callTracer): %w", network, tx, errors.Join(errs...))
}

// Input is tx's call data, from the first endpoint that has the
// transaction (it is signed: its hash proves the bytes, checked here).
func (c *ethContracts) Input(network, tx string) ([]byte, error) {
	var errs []error
	for i, cl := range c.nets[network] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var raw hexutil.Bytes
		err := cl.CallContext(ctx, &raw, "eth_getRawTransactionByHash", tx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %d: %w", i+1, err))
			continue
		}
		var t types.Transaction
		if err := t.UnmarshalBinary(raw); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %d: %w", i+1, err))
			continue
		}
		if !strings.EqualFold(t.Hash().Hex(), tx) {
			errs = append(errs, fmt.Errorf("endpoint %d: gave another transaction (%s)", i+1, t.Hash().Hex()))
			continue
		}
		return t.Data(), nil
	}
	return nil, fmt.Errorf("no endpoint of %s gave transaction %s: %w", network, tx, errors.Join(errs...))
}

var _ rules.ContractReader = (*ethContracts)(nil)
