package rpcpool

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/follow"
)

// Report is one endpoint's answer to "which block is at this height".
type Report = chain.NodeReport

// Alerter receives the alerts a pool raises when its endpoints disagree
// (kafka.Producer writes them to cordon.alerts).
type Alerter interface {
	Alert(ctx context.Context, a chain.Alert) error
}

// SetAlerter makes the pool raise its alerts through a (nil: log only).
// Call it before the pool is used.
func (p *Pool[C]) SetAlerter(a Alerter) { p.alerts.set(a) }

// Quorum returns the pool's quorum and its number of endpoints.
func (p *Pool[C]) Quorum() (q, n int) { return p.cfg.Quorum, len(p.eps) }

// Question asks endpoints which block is at a height.
type Question[C any] struct {
	// Method names the call in metrics and logs.
	Method string
	Height uint64
	// HashOf returns the endpoint's canonical block hash at Height, in
	// the form the block events carry; an error wrapping
	// follow.ErrNotFound when it has no block there.
	HashOf func(ctx context.Context, ep *Endpoint[C]) (string, error)
	// Work, when set, returns the accumulated work of the chain ending at
	// hash as ep reports it (Bitcoin's chainwork). It breaks a tie between
	// hashes that each reach the quorum (possible only with a quorum below
	// a majority), and is reported in disagreement alerts.
	Work func(ctx context.Context, ep *Endpoint[C], hash string) (*big.Int, error)
}

// Agreement is a block hash a quorum of endpoints reported at a height.
type Agreement[C any] struct {
	Hash string
	// Agreeing are the endpoints that reported Hash: the ones to fetch
	// the block from.
	Agreeing []*Endpoint[C]
	// Reports are the answers of the endpoints asked, in configuration
	// order.
	Reports []Report
}

// Reports asks every configured endpoint — not only the usable ones —
// for its hash at a height (HashOf), in parallel, each bounded by the
// request timeout. An endpoint of another chain is not asked; its report
// carries the error that excluded it. The order is the configuration
// order.
func (p *Pool[C]) Reports(ctx context.Context, method string, hashOf func(ctx context.Context, ep *Endpoint[C]) (string, error)) []Report {
	asked := make([]*Endpoint[C], 0, len(p.eps))
	out := make([]Report, len(p.eps))
	idx := map[*Endpoint[C]]int{}
	for i, ep := range p.eps {
		ep.mu.Lock()
		wrong := ep.wrongChain
		ep.mu.Unlock()
		out[i].Endpoint = ep.Name
		if wrong != nil {
			out[i].Err = &EndpointError{Endpoint: ep.Name, Method: method, Err: redact(ep, wrong)}
			continue
		}
		idx[ep] = i
		asked = append(asked, ep)
	}
	for j, r := range p.ask(ctx, method, asked, hashOf) {
		out[idx[asked[j]]] = r
	}
	return out
}

// usable splits the endpoints of the right chain into those an agreement
// asks first (not in a penalty; all of them when fewer than the quorum
// are) and the rest, asked when the first do not agree.
func (p *Pool[C]) usable() (first, rest []*Endpoint[C]) {
	now := time.Now()
	for _, ep := range p.eps {
		ep.mu.Lock()
		if ep.wrongChain == nil {
			if now.Before(ep.penalUntil) {
				rest = append(rest, ep)
			} else {
				first = append(first, ep)
			}
		}
		ep.mu.Unlock()
	}
	if len(first) < p.cfg.Quorum {
		return append(first, rest...), nil
	}
	return first, rest
}

// ask calls fn on eps in parallel, each bounded by the request timeout,
// and returns their reports in the order of eps.
func (p *Pool[C]) ask(ctx context.Context, method string, eps []*Endpoint[C], fn func(ctx context.Context, ep *Endpoint[C]) (string, error)) []Report {
	out := make([]Report, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Endpoint = ep.Name
			if err := ctx.Err(); err != nil {
				out[i].Err = err
				return
			}
			cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
			start := time.Now()
			h, err := fn(cctx, ep)
			cancel()
			p.metrics.observe(p.cfg.Label, ep.Name, method, err, time.Since(start))
			if err != nil {
				out[i].Err = &EndpointError{Endpoint: ep.Name, Method: method, Err: redact(ep, err)}
				return
			}
			out[i].Hash = h
		}()
	}
	wg.Wait()
	return out
}

// Agree decides which block is canonical at q.Height: it asks every usable
// endpoint for its hash there (in parallel) and takes the hash at least
// Quorum of them report. An endpoint reporting another hash is penalized,
// counted in cordon_rpc_disagreements_total, logged and alerted by name.
// When no hash reaches the quorum, Agree returns an error wrapping
// follow.ErrNotAgreed (the height waits; an alert names every endpoint and
// its hash when some disagree), or follow.ErrNotFound when a quorum has no
// block there.
func (p *Pool[C]) Agree(ctx context.Context, q Question[C]) (*Agreement[C], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	eps, rest := p.usable()
	if len(eps) == 0 {
		return nil, fmt.Errorf("%s(%d): no usable endpoint (all serve the wrong chain)", q.Method, q.Height)
	}
	reports := p.ask(ctx, q.Method, eps, q.HashOf)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(rest) > 0 && !reached(reports, p.cfg.Quorum) {
		// Penalized endpoints get a say before the height is declared
		// not agreed.
		eps = append(eps, rest...)
		reports = append(reports, p.ask(ctx, q.Method, rest, q.HashOf)...)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	votes := map[string][]*Endpoint[C]{}
	absent := 0
	var errs []error
	for i, r := range reports {
		switch {
		case r.Err == nil:
			votes[r.Hash] = append(votes[r.Hash], eps[i])
		case errors.Is(r.Err, follow.ErrNotFound):
			absent++
		default:
			errs = append(errs, r.Err)
			p.penalize(eps[i], q.Method, r.Err)
		}
	}
	var best []string // hashes with the most votes, at least the quorum
	most := 0
	for h, v := range votes {
		switch {
		case len(v) < p.cfg.Quorum || len(v) < most:
		case len(v) > most:
			best, most = append(best[:0], h), len(v)
		default:
			best = append(best, h)
		}
	}
	sort.Strings(best)
	var works map[string]*big.Int
	if len(best) > 1 || (len(best) == 0 && len(votes) > 1) {
		works = p.works(ctx, q, votes)
	}
	if len(best) > 1 && works != nil {
		best = heaviest(best, works)
	}
	if len(best) == 1 {
		ag := &Agreement[C]{Hash: best[0], Agreeing: votes[best[0]], Reports: p.inOrder(reports)}
		if len(votes) > 1 {
			p.dissent(ctx, q, ag, votes)
		}
		return ag, nil
	}
	if absent >= p.cfg.Quorum && len(best) == 0 {
		return nil, fmt.Errorf("%s(%d): %w at %d of %d endpoints asked", q.Method, q.Height, follow.ErrNotFound, absent, len(eps))
	}
	if len(votes) == 0 && absent == 0 {
		return nil, fmt.Errorf("%s(%d) failed on all %d endpoints: %w", q.Method, q.Height, len(eps), errors.Join(errs...))
	}
	p.metrics.notAgreed.WithLabelValues(p.cfg.Label).Inc()
	err := &DisagreementError{Label: p.cfg.Label, Height: q.Height, Quorum: p.cfg.Quorum, Reports: p.inOrder(reports)}
	if len(votes) > 1 {
		for _, v := range votes {
			for _, ep := range v {
				p.metrics.disagreements.WithLabelValues(p.cfg.Label, ep.Name).Inc()
			}
		}
		p.log.Error("endpoints disagree on the block at a height; the height waits until a quorum agrees",
			"height", q.Height, "quorum", p.cfg.Quorum, "reports", err.describe())
		p.alertNotAgreed(ctx, err, works)
	} else {
		p.log.Info("block not yet agreed by a quorum; waiting", "height", q.Height, "quorum", p.cfg.Quorum, "reports", err.describe())
	}
	return nil, err
}

// reached reports whether some hash has at least q reports.
func reached(reports []Report, q int) bool {
	n := map[string]int{}
	for _, r := range reports {
		if r.Err == nil {
			n[r.Hash]++
			if n[r.Hash] >= q {
				return true
			}
		}
	}
	return false
}

// inOrder returns reports in configuration order.
func (p *Pool[C]) inOrder(reports []Report) []Report {
	pos := map[string]int{}
	for i, ep := range p.eps {
		pos[ep.Name] = i
	}
	out := append([]Report(nil), reports...)
	sort.SliceStable(out, func(i, j int) bool { return pos[out[i].Endpoint] < pos[out[j].Endpoint] })
	return out
}

// works asks one reporter of each hash for its chain's accumulated work.
func (p *Pool[C]) works(ctx context.Context, q Question[C], votes map[string][]*Endpoint[C]) map[string]*big.Int {
	if q.Work == nil {
		return nil
	}
	out := map[string]*big.Int{}
	for h, v := range votes {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		w, err := q.Work(cctx, v[0], h)
		cancel()
		if err == nil && w != nil {
			out[h] = w
		}
	}
	return out
}

// heaviest keeps the hashes of the most work; all of them when the work
// of one is unknown.
func heaviest(hashes []string, works map[string]*big.Int) []string {
	var best []string
	var bw *big.Int
	for _, h := range hashes {
		w, ok := works[h]
		if !ok {
			return hashes
		}
		switch {
		case bw == nil || w.Cmp(bw) > 0:
			best, bw = append(best[:0], h), w
		case w.Cmp(bw) == 0:
			best = append(best, h)
		}
	}
	return best
}

// DisagreementError is returned by Agree when no block hash reached the
// quorum at a height. It wraps follow.ErrNotAgreed.
type DisagreementError struct {
	Label   string
	Height  uint64
	Quorum  int
	Reports []Report
}

func (e *DisagreementError) Error() string {
	return fmt.Sprintf("%s height %d: no block hash is reported by %d endpoints: %s: %v", e.Label, e.Height, e.Quorum, e.describe(), follow.ErrNotAgreed)
}

func (e *DisagreementError) Unwrap() error { return follow.ErrNotAgreed }

func (e *DisagreementError) describe() string {
	parts := make([]string, len(e.Reports))
	for i, r := range e.Reports {
		switch {
		case r.Err == nil:
			parts[i] = r.Endpoint + "=" + r.Hash
		case errors.Is(r.Err, follow.ErrNotFound):
			parts[i] = r.Endpoint + "=<no block>"
		default:
			parts[i] = r.Endpoint + "=<error>"
		}
	}
	return strings.Join(parts, ", ")
}

// dissent handles the endpoints that reported another hash than the
// agreed one.
func (p *Pool[C]) dissent(ctx context.Context, q Question[C], ag *Agreement[C], votes map[string][]*Endpoint[C]) {
	names := make([]string, len(ag.Agreeing))
	for i, ep := range ag.Agreeing {
		names[i] = ep.Name
	}
	for h, v := range votes {
		if h == ag.Hash {
			continue
		}
		for _, ep := range v {
			p.metrics.disagreements.WithLabelValues(p.cfg.Label, ep.Name).Inc()
			err := fmt.Errorf("reports block %s at height %d, but %d endpoints (%s) agree on %s", h, q.Height, len(v), strings.Join(names, ", "), ag.Hash)
			ep.mu.Lock()
			ep.penalUntil = time.Now().Add(p.cfg.Penalty)
			ep.lastErr = err
			ep.mu.Unlock()
			p.metrics.healthy.WithLabelValues(p.cfg.Label, ep.Name).Set(0)
			p.log.Error("endpoint reports a block the quorum does not; penalized", "endpoint", ep.Name, "height", q.Height,
				"block_hash", h, "agreed_hash", ag.Hash, "agreeing", strings.Join(names, ","))
			p.alert(ctx, "endpoint:"+ep.Name, chain.Alert{
				ID:   fmt.Sprintf("%s/rpc_endpoint_dissent/%s/%d", chain.StreamKey(p.cfg.Chain, p.cfg.Network), ep.Name, q.Height),
				Type: "rpc_endpoint_dissent", Severity: "critical",
				Message: fmt.Sprintf("%s: endpoint %s %v; it is penalized and its blocks are not used", p.cfg.Label, ep.Name, err),
				Details: map[string]string{"endpoint": ep.Name, "height": fmt.Sprint(q.Height), "block_hash": h,
					"agreed_hash": ag.Hash, "agreeing": strings.Join(names, ","), "quorum": fmt.Sprint(p.cfg.Quorum)},
			})
		}
	}
}

func (p *Pool[C]) alertNotAgreed(ctx context.Context, e *DisagreementError, works map[string]*big.Int) {
	details := map[string]string{"height": fmt.Sprint(e.Height), "quorum": fmt.Sprint(e.Quorum)}
	var dissenting []string
	for _, r := range e.Reports {
		switch {
		case r.Err == nil:
			details["endpoint."+r.Endpoint] = r.Hash
			dissenting = append(dissenting, r.Endpoint)
			if w, ok := works[r.Hash]; ok {
				details["chainwork."+r.Hash] = w.Text(16)
			}
		case errors.Is(r.Err, follow.ErrNotFound):
			details["endpoint."+r.Endpoint] = "<no block>"
		default:
			details["endpoint."+r.Endpoint] = "<error: " + r.Err.Error() + ">"
		}
	}
	p.alert(ctx, fmt.Sprintf("height:%d", e.Height), chain.Alert{
		ID:   fmt.Sprintf("%s/rpc_not_agreed/%d", chain.StreamKey(p.cfg.Chain, p.cfg.Network), e.Height),
		Type: "rpc_not_agreed", Severity: "critical",
		Message: fmt.Sprintf("%s height %d: endpoints %s disagree on the block and none is reported by the quorum of %d: %s; "+
			"the chain waits at this height until a quorum agrees", e.Label, e.Height, strings.Join(dissenting, ", "), e.Quorum, e.describe()),
		Details: details,
	})
}

// alertEvery bounds the alerts of one key: one per height for heights no
// quorum agrees on, one per endpoint for an endpoint that keeps
// dissenting.
const alertEvery = 10 * time.Minute

type alerts struct {
	mu   sync.Mutex
	to   Alerter
	sent map[string]time.Time
}

func (a *alerts) set(to Alerter) {
	a.mu.Lock()
	a.to = to
	a.mu.Unlock()
}

// alert raises al unless an alert of key was raised within alertEvery.
func (p *Pool[C]) alert(ctx context.Context, key string, al chain.Alert) {
	now := time.Now()
	p.alerts.mu.Lock()
	if t, ok := p.alerts.sent[key]; ok && now.Sub(t) < alertEvery {
		p.alerts.mu.Unlock()
		return
	}
	for k, t := range p.alerts.sent {
		if now.Sub(t) >= alertEvery {
			delete(p.alerts.sent, k)
		}
	}
	p.alerts.sent[key] = now
	to := p.alerts.to
	p.alerts.mu.Unlock()
	if to == nil {
		return
	}
	al.V, al.Chain, al.Network, al.Time = chain.SchemaVersion, p.cfg.Chain, p.cfg.Network, now.UTC()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := to.Alert(actx, al); err != nil {
		p.log.Error("publish endpoint alert", "alert", al.Type, "err", err)
	}
}

// AgreedHeight asks the usable endpoints for a height (a head, a finalized
// height) in parallel and returns the Quorum-th highest answer: the
// highest height at least Quorum of them report. With a quorum of 1 it is
// Do (one endpoint, failing over).
func (p *Pool[C]) AgreedHeight(ctx context.Context, method string, fn func(ctx context.Context, ep *Endpoint[C]) (uint64, error)) (uint64, error) {
	if p.cfg.Quorum == 1 {
		var out uint64
		err := p.Do(ctx, method, func(ctx context.Context, ep *Endpoint[C]) error {
			h, err := fn(ctx, ep)
			out = h
			return err
		})
		return out, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	eps, _ := p.usable()
	heights := make([]uint64, len(eps))
	reports := p.ask(ctx, method, eps, func(ctx context.Context, ep *Endpoint[C]) (string, error) {
		h, err := fn(ctx, ep)
		heights[slices.Index(eps, ep)] = h
		return "", err
	})
	var got []uint64
	var errs []error
	for i, r := range reports {
		switch {
		case r.Err == nil:
			got = append(got, heights[i])
		case errors.Is(r.Err, follow.ErrNotFound):
			errs = append(errs, errors.New(r.Err.Error())) // a failure here, not a missing block
		default:
			errs = append(errs, r.Err)
			p.penalize(eps[i], method, r.Err)
		}
	}
	h, ok := kthHighest(got, p.cfg.Quorum)
	if !ok {
		return 0, fmt.Errorf("%s: %d of %d endpoints answered, quorum is %d: %w", method, len(got), len(eps), p.cfg.Quorum, errors.Join(errs...))
	}
	return h, nil
}
