package credit

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cordonhq/cordon/internal/chain"
)

// Before a deposit is credited, the chain's own nodes are asked which
// block is at its height: the block stream says what one watcher was
// told by whichever endpoint answered it (or what someone who could
// write to Kafka wrote), and a credit must not rest on one source. At
// least a quorum of the chain's configured endpoints must report the
// deposit's block hash.

// NodeReport is one endpoint's answer to which block is at a height.
type NodeReport = chain.NodeReport

// Nodes asks a chain network's configured endpoints which block is at a
// height: every endpoint's report, in configuration order, and the
// quorum its configuration asks for. cmd wires it to the watchers'
// sources.
//
// BlockAt is the chain's canonical block at a height as its endpoints
// agree on it, checked against its hash (the watchers' own fetch): a
// confirmed block is read once more to see that it holds the deposit,
// paying what the block record on Kafka says.
type Nodes interface {
	HashesAt(ctx context.Context, c chain.Chain, network string, height uint64) (reports []NodeReport, quorum int, err error)
	BlockAt(ctx context.Context, c chain.Chain, network string, height uint64) (*chain.Block, error)
	// Tip is the head the endpoints agree on, and their finalized height
	// (0 where the chain has none): a deposit's depth is counted on the
	// nodes' chain, not on what the block stream claims its tip is.
	Tip(ctx context.Context, c chain.Chain, network string) (head, finalized uint64, err error)
}

// Outcomes of asking the nodes.
const (
	// Confirmed: at least a quorum reports the deposit's block.
	Confirmed = iota
	// Unconfirmed: not enough answers yet either way; the deposit waits.
	Unconfirmed
	// Disputed: so many endpoints report another block that a quorum
	// for the deposit's block is out of reach; the deposit is held.
	Disputed
)

// Verdict is what the nodes said about a deposit's block.
type Verdict struct {
	Outcome       int
	Agree, Quorum int
	// Dissent are the endpoints reporting another block, Silent those
	// that did not answer.
	Dissent, Silent []NodeReport
	// Note, when set, is why a block the endpoints agree on does not
	// confirm the deposit.
	Note string
}

// Judge weighs the reports on hash against quorum q.
func Judge(reports []NodeReport, hash string, q int) Verdict {
	v := Verdict{Quorum: max(q, 1)}
	for _, r := range reports {
		switch {
		case r.Err != nil || r.Hash == "":
			v.Silent = append(v.Silent, r)
		case strings.EqualFold(r.Hash, hash):
			v.Agree++
		default:
			v.Dissent = append(v.Dissent, r)
		}
	}
	switch {
	case v.Agree >= v.Quorum && v.Agree > len(v.Dissent):
		v.Outcome = Confirmed
	case len(reports)-len(v.Dissent) < v.Quorum:
		v.Outcome = Disputed
	default:
		v.Outcome = Unconfirmed
	}
	return v
}

// Reason is the verdict in words, naming the endpoints.
func (v Verdict) Reason(height uint64, hash string) string {
	if v.Note != "" {
		return v.Note
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the nodes do not confirm block %s at height %d: %d of the %d needed report it", hash, height, v.Agree, v.Quorum)
	for _, r := range v.Dissent {
		fmt.Fprintf(&b, "; %s reports %s", r.Endpoint, r.Hash)
	}
	for _, r := range v.Silent {
		if r.Err != nil {
			fmt.Fprintf(&b, "; %s did not answer (%v)", r.Endpoint, r.Err)
		} else {
			fmt.Fprintf(&b, "; %s has no block there", r.Endpoint)
		}
	}
	return b.String()
}

// paid tells whether the nodes' block b holds c: the same transfer
// (Ethereum: transaction, log index or native, recipient, asset, amount)
// or output (Bitcoin: transaction, vout, address, amount).
func paid(b *chain.Block, c *Candidate) bool {
	amount := c.Amount.String()
	switch c.Chain {
	case chain.ETH:
		for i := range b.Transfers {
			t := &b.Transfers[i]
			idx := "native"
			if t.LogIndex != nil {
				idx = strconv.FormatUint(uint64(*t.LogIndex), 10)
			}
			if strings.EqualFold(t.TxHash, c.TxHash) && idx == c.Index && strings.EqualFold(t.To, c.Address) &&
				strings.EqualFold(t.Asset, c.Asset) && t.Amount.String() == amount {
				return true
			}
		}
	case chain.BTC:
		for i := range b.Outputs {
			o := &b.Outputs[i]
			if o.TxHash == c.TxHash && VoutIndex(o.Vout) == c.Index && o.Address != nil && *o.Address == c.Address && o.Amount.String() == amount {
				return true
			}
		}
	}
	return false
}

// Source is a chain network's endpoints as the watchers' sources give
// them (eth.Source, btc.Source).
type Source interface {
	HashesAt(ctx context.Context, height uint64) []NodeReport
	Quorum() (q, n int)
	BlockAt(ctx context.Context, height uint64) (*chain.Block, error)
	Head(ctx context.Context) (uint64, error)
}

// Finalizer is a Source whose chain names a finalized block.
type Finalizer interface {
	Finalized(ctx context.Context) (uint64, error)
}

// Sources are Nodes over each chain network's Source, by stream
// ("eth/mainnet").
type Sources map[string]Source

func (n Sources) source(c chain.Chain, network string) (Source, error) {
	src, ok := n[chain.StreamKey(c, network)]
	if !ok {
		return nil, fmt.Errorf("no endpoints are configured for %s/%s (chains.%s): its deposits cannot be confirmed", c, network, c)
	}
	return src, nil
}

// HashesAt asks every endpoint of the network.
func (n Sources) HashesAt(ctx context.Context, c chain.Chain, network string, height uint64) ([]NodeReport, int, error) {
	src, err := n.source(c, network)
	if err != nil {
		return nil, 0, err
	}
	q, _ := src.Quorum()
	return src.HashesAt(ctx, height), q, nil
}

// BlockAt is the network's agreed block at height.
func (n Sources) BlockAt(ctx context.Context, c chain.Chain, network string, height uint64) (*chain.Block, error) {
	src, err := n.source(c, network)
	if err != nil {
		return nil, err
	}
	return src.BlockAt(ctx, height)
}

// Tip is the network's agreed head and finalized height. A node without
// the finalized tag (or an error asking it) holds back only the deposits
// whose policy waits for finality.
func (n Sources) Tip(ctx context.Context, c chain.Chain, network string) (head, finalized uint64, err error) {
	src, err := n.source(c, network)
	if err != nil {
		return 0, 0, err
	}
	if head, err = src.Head(ctx); err != nil {
		return 0, 0, err
	}
	if f, ok := src.(Finalizer); ok {
		finalized, _ = f.Finalized(ctx)
	}
	return head, finalized, nil
}
