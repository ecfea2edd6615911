package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
)

// ServiceConfig configures the gate's service.
type ServiceConfig struct {
	Kafka kafka.Config
	// NewCore builds an empty core (policy, prices, a fresh risk layer,
	// approvers, assets) for each term as leader: its state is then
	// restored from cordon.gate-state.
	NewCore func() (*Core, error)
	// Audit appends the audit log's records (nil: none are written).
	Audit Auditor
	// Clock is the gate's one source of time (tests move it).
	Clock clock.Clock
	Log   *slog.Logger
	// TransactionalID defaults to kafka.TxGate; Tick (default 1s) is how
	// often deadlines are checked.
	TransactionalID string
	Tick            time.Duration
	// Committed, when set, is called after each commit with what changed,
	// from the committer while the loop applies the next batch: the
	// withdrawals and trips are the leader's own and may have moved on
	// since; read their ids and count only.
	Committed func(Changes)
	// Metrics (nil: none).
	Metrics *Metrics
}

// Auditor turns a batch's entries into audit-log records for the same
// transaction, and restores its head from what the gate's state
// remembers of it.
type Auditor interface {
	// Append returns the records of entries (to cordon.audit) and the
	// new head to keep in the gate's state; nothing is kept until
	// Commit is called.
	Append(entries []Entry, now time.Time) ([]kafka.Record, json.RawMessage, error)
	// Due tells whether a checkpoint is due (an idle gate still signs).
	Due() bool
	// Commit keeps the head Append returned; Abort drops what Append
	// made since; Restore replaces the head.
	Commit(head json.RawMessage)
	Abort()
	Restore(head json.RawMessage) error
}

// ErrNotLeader is returned (as 503) by an instance that does not lead.
var ErrNotLeader = errors.New("this instance is a standby of the withdrawal gate; the leader serves withdrawals")

// Service runs the gate: while this instance leads, one goroutine owns
// the Core and applies requests, approvals and the clock to it in
// batches, each batch one Kafka transaction (the changed withdrawals to
// cordon.withdrawals and cordon.gate-state, the audit records to
// cordon.audit); a request is answered only once its batch committed.
type Service struct {
	cfg ServiceConfig
	ops chan *op
	// core is the leader's core while it leads (nil otherwise), for
	// warm-up reads of the risk layer outside the loop.
	core   atomic.Pointer[Core]
	leader atomic.Bool

	mu     sync.Mutex
	counts map[string]int
}

type op struct {
	fn    func(*Core, time.Time) (any, error)
	reply chan result
}

type result struct {
	v   any
	err error
}

// NewService returns the service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.NewCore == nil {
		return nil, errors.New("gate: no core")
	}
	cfg.Kafka.Topics.Fill()
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = kafka.TxGate
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	return &Service{cfg: cfg, ops: make(chan *op, 4096)}, nil
}

// Leader tells whether this instance serves withdrawals now.
func (s *Service) Leader() bool { return s.leader.Load() }

// Counts are the withdrawals by status as of the last commit.
func (s *Service) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// do runs fn on the leader's core, within the next batch, and returns
// once that batch committed.
func (s *Service) do(ctx context.Context, fn func(*Core, time.Time) (any, error)) (any, error) {
	if !s.leader.Load() {
		return nil, &Refusal{Status: http.StatusServiceUnavailable, Code: "not_leader", Reason: ErrNotLeader.Error()}
	}
	o := &op{fn: fn, reply: make(chan result, 1)}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-o.reply:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run leads when the group says so, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	kc := s.cfg.Kafka
	return kafka.Lead(ctx, kafka.LeaderConfig{Kafka: kc, Group: kafka.GroupGateLeader, Topic: kc.Topics.GateLeader(), Log: s.cfg.Log}, s.lead)
}

// Keys of the gate's own records in cordon.gate-state.
const (
	markerKey  = "restore-marker"
	breakerKey = "breaker"
	auditKey   = "audit-head"
	policyKey  = "policy"
	wPrefix    = "w/"
	xPrefix    = "x/"
	bookPrefix = "ab/"
)

// policyState is the last policy the audit log recorded.
type policyState struct {
	Hash string `json:"hash"`
}

type breakerState struct {
	Trips []*Trip `json:"trips"`
}

func (s *Service) lead(ctx context.Context) error {
	tp := s.cfg.Kafka.Topics
	if err := kafka.Ensure(ctx, s.cfg.Kafka, tp.Withdrawals, tp.GateState, tp.Audit, tp.Alerts, tp.SignRequests); err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	out, err := kafka.NewTxWriter(s.cfg.Kafka, s.cfg.TransactionalID, tp.GateState, 0)
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	defer out.Close()
	c, err := s.restore(ctx, out)
	if err != nil {
		return err
	}
	s.core.Store(c)
	s.leader.Store(true)
	defer func() {
		s.leader.Store(false)
		s.core.Store(nil)
		s.drain()
	}()
	s.cfg.Log.Info("gate: leading", "withdrawals", len(c.ws), "trips", len(c.trips))
	// The loop applies each op to the core as it arrives, while the
	// committer writes the batch before (signing and the Kafka
	// transaction); whenever the committer is free, everything applied
	// since is handed to it as the next batch, so batches grow with the
	// load and a request waits for at most the commit in flight and its
	// own. Every op, a read included, is answered only once its batch
	// committed: nobody sees a state that could still be lost.
	commits := make(chan *batch, 1)
	done := make(chan struct{}, 1)
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.committer(ctx, out, commits, done, failed)
	}()
	defer func() {
		close(commits)
		wg.Wait()
	}()
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	// Deadlines are checked every Tick of the gate's clock and whenever
	// the breaker changed, not on every op: a walk of the open
	// withdrawals per batch was most of the loop under load.
	var lastTick time.Time
	cur, idle := &batch{}, true
	apply := func(o *op, now time.Time) {
		v, err := o.fn(c, now)
		cur.ops, cur.replies = append(cur.ops, o), append(cur.replies, result{v: v, err: err})
	}
	for {
		ticked := false
		select {
		case <-ctx.Done():
			cur.fail(ctx.Err())
			return nil
		case err := <-failed:
			cur.fail(err)
			return err
		case <-done:
			idle = true
		case o := <-s.ops:
			now := s.cfg.Clock.Now()
			apply(o, now)
		more:
			for n := 1; n < 512; n++ {
				select {
				case o := <-s.ops:
					apply(o, now)
				default:
					break more
				}
			}
		case <-tick.C:
			ticked = true
		}
		now := s.cfg.Clock.Now()
		if ticked || c.tripsChanged || now.Sub(lastTick) >= s.cfg.Tick || now.Before(lastTick) {
			c.Tick(now)
			lastTick = now
		}
		if !idle {
			continue
		}
		if err := s.prepare(c, cur, now); err != nil {
			cur.fail(err)
			return err
		}
		if len(cur.ops) == 0 && len(cur.recs) == 0 {
			continue
		}
		commits <- cur // the committer is idle: this does not wait
		cur, idle = &batch{}, false
	}
}

// batch is what the loop applied while the commit before it ran: the
// ops, their replies, and the records of what they changed, committed as
// one transaction.
type batch struct {
	ops     []*op
	replies []result
	recs    []kafka.Record
	ch      Changes
	head    json.RawMessage
	counts  map[string]int
	took    time.Duration
}

// fail answers every op of b with the commit's failure.
func (b *batch) fail(err error) {
	for _, o := range b.ops {
		o.reply <- result{err: &Refusal{Status: http.StatusServiceUnavailable, Code: "not_committed", Reason: "the gate could not commit: " + err.Error()}}
	}
}

// committer commits the batches in order and answers their ops. After a
// failure it commits nothing more: the batches after it fail too (the
// core holds their changes, so the loop stops and the next term
// restores what Kafka holds).
func (s *Service) committer(ctx context.Context, out *kafka.TxWriter, in <-chan *batch, done chan<- struct{}, failed chan<- error) {
	var broken error
	for b := range in {
		if broken != nil {
			b.fail(broken)
			continue
		}
		if err := s.commit(ctx, out, b); err != nil {
			broken = err
			b.fail(err)
			failed <- err
			continue
		}
		for i, o := range b.ops {
			o.reply <- b.replies[i]
		}
		done <- struct{}{}
	}
}

// drain answers the ops queued when leadership ended.
func (s *Service) drain() {
	for {
		select {
		case o := <-s.ops:
			o.reply <- result{err: &Refusal{Status: http.StatusServiceUnavailable, Code: "not_leader", Reason: ErrNotLeader.Error()}}
		default:
			return
		}
	}
}

var (
	withdrawalHeaders = []kafka.Header{{Key: kafka.HeaderType, Value: []byte("withdrawal")},
		{Key: kafka.HeaderSchema, Value: []byte("cordon.withdrawal.v1")}}
	stateHeaders = []kafka.Header{{Key: kafka.HeaderType, Value: []byte("gate-state")}}
)

// prepare turns what the core changed into b's records, in the loop:
// the withdrawals are the core's own and change with the next batch.
func (s *Service) prepare(c *Core, b *batch, now time.Time) error {
	ch := c.Take()
	due := s.cfg.Audit != nil && s.cfg.Audit.Due()
	if len(ch.Withdrawals) == 0 && !ch.BreakerChanged && len(ch.Entries) == 0 && len(ch.Alerts) == 0 && len(ch.Book) == 0 && ch.Policy == "" &&
		len(ch.Archived) == 0 && len(ch.Outgoing) == 0 && !due {
		return nil
	}
	start := time.Now()
	tp := s.cfg.Kafka.Topics
	recs := make([]kafka.Record, 0, 2*len(ch.Withdrawals)+len(ch.Entries)+2)
	for _, w := range ch.Withdrawals {
		sv, err := json.Marshal(w)
		if err != nil {
			return err
		}
		ev := w.Event()
		ev.Time = now.UTC()
		evb, err := json.Marshal(&ev)
		if err != nil {
			return err
		}
		recs = append(recs, kafka.Record{Key: []byte(wPrefix + w.Intent.ID), Value: sv, Headers: stateHeaders},
			kafka.Record{Topic: tp.Withdrawals, Key: []byte(w.Intent.ID), Value: evb, Headers: withdrawalHeaders})
	}
	for i := range ch.Archived {
		a := &ch.Archived[i]
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		// The summary first, then the tombstone that lets compaction
		// drop the whole record.
		recs = append(recs, kafka.Record{Key: []byte(xPrefix + a.ID), Value: b, Headers: stateHeaders},
			kafka.Record{Key: []byte(wPrefix + a.ID), Headers: stateHeaders})
	}
	for i := range ch.Book {
		b, err := json.Marshal(&ch.Book[i])
		if err != nil {
			return err
		}
		recs = append(recs, kafka.Record{Key: []byte(bookPrefix + ch.Book[i].ID), Value: b, Headers: stateHeaders})
	}
	if ch.BreakerChanged {
		b, err := json.Marshal(breakerState{Trips: ch.Trips})
		if err != nil {
			return err
		}
		recs = append(recs, kafka.Record{Key: []byte(breakerKey), Value: b, Headers: stateHeaders})
	}
	if ch.Policy != "" {
		b, err := json.Marshal(policyState{Hash: ch.Policy})
		if err != nil {
			return err
		}
		recs = append(recs, kafka.Record{Key: []byte(policyKey), Value: b, Headers: stateHeaders})
	}
	for _, o := range ch.Outgoing {
		recs = append(recs, kafka.Record{Topic: o.Topic, Key: []byte(o.Key), Value: o.Value, Headers: []kafka.Header{{Key: kafka.HeaderType, Value: []byte(o.Type)}}})
	}
	for i := range ch.Alerts {
		b, _ := json.Marshal(&ch.Alerts[i])
		recs = append(recs, kafka.Record{Topic: tp.Alerts, Key: []byte(ch.Alerts[i].ID), Value: b})
	}
	if s.cfg.Audit != nil && (len(ch.Entries) > 0 || due) {
		ar, h, err := s.cfg.Audit.Append(ch.Entries, now)
		if err != nil {
			return fmt.Errorf("gate: audit: %w", err)
		}
		if h != nil {
			recs = append(recs, ar...)
			recs = append(recs, kafka.Record{Key: []byte(auditKey), Value: h, Headers: stateHeaders})
			b.head = h
		}
	}
	b.recs, b.ch, b.counts, b.took = recs, ch, c.Counts(), time.Since(start)
	return nil
}

// commit writes b's records in one transaction, in the committer.
func (s *Service) commit(ctx context.Context, out *kafka.TxWriter, b *batch) error {
	if len(b.recs) == 0 {
		return nil
	}
	start := time.Now()
	if err := out.Commit(ctx, b.recs); err != nil {
		if s.cfg.Audit != nil {
			// The leader stops; the next term restores the head the
			// state committed, whatever this transaction's outcome.
			s.cfg.Audit.Abort()
		}
		return fmt.Errorf("gate: commit: %w", err)
	}
	if b.head != nil {
		s.cfg.Audit.Commit(b.head)
	}
	s.cfg.Metrics.committed(b.ch, b.took+time.Since(start))
	s.setCounts(b.counts)
	if s.cfg.Committed != nil {
		s.cfg.Committed(b.ch)
	}
	return nil
}

func (s *Service) setCounts(n map[string]int) {
	s.cfg.Metrics.setCounts(n)
	s.mu.Lock()
	s.counts = n
	s.mu.Unlock()
}

func (s *Service) publishCounts() {
	c := s.core.Load()
	if c == nil {
		return
	}
	n := c.Counts()
	s.cfg.Metrics.setCounts(n)
	s.mu.Lock()
	s.counts = n
	s.mu.Unlock()
}

// restore fences (aborting what an earlier leader left open) and reads
// cordon.gate-state up to the fence into a new core.
func (s *Service) restore(ctx context.Context, out *kafka.TxWriter) (*Core, error) {
	c, err := s.cfg.NewCore()
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	tp := s.cfg.Kafka.Topics
	fence, err := out.Fence(ctx, tp.GateState, markerKey, []kafka.Header{{Key: kafka.HeaderType, Value: []byte(markerKey)}})
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	start := time.Now()
	ws := map[string]*Withdrawal{}
	var trips []*Trip
	entries := map[string]*BookEntry{}
	archived := map[string]Archived{}
	var head json.RawMessage
	var pol policyState
	bad := 0
	err = kafka.ReadToFence(ctx, s.cfg.Kafka, tp.GateState, fence, func(r *kafka.Record) {
		k := string(r.Key)
		switch {
		case k == markerKey:
		case k == breakerKey:
			var b breakerState
			if json.Unmarshal(r.Value, &b) != nil {
				bad++
				return
			}
			trips = b.Trips
		case k == auditKey:
			head = append(json.RawMessage(nil), r.Value...)
		case k == policyKey:
			if json.Unmarshal(r.Value, &pol) != nil {
				bad++
			}
		case strings.HasPrefix(k, bookPrefix):
			var e BookEntry
			if json.Unmarshal(r.Value, &e) != nil || bookPrefix+e.ID != k {
				bad++
				return
			}
			entries[e.ID] = &e // the last version of each entry
		case strings.HasPrefix(k, xPrefix):
			var a Archived
			if json.Unmarshal(r.Value, &a) != nil || xPrefix+a.ID != k {
				bad++
				return
			}
			archived[a.ID] = a
		case len(k) > len(wPrefix) && k[:len(wPrefix)] == wPrefix && len(r.Value) == 0:
			delete(ws, k[len(wPrefix):]) // archived: its whole record is gone
		case len(k) > len(wPrefix) && k[:len(wPrefix)] == wPrefix:
			var w Withdrawal
			if json.Unmarshal(r.Value, &w) != nil || wPrefix+w.Intent.ID != k {
				bad++
				return
			}
			ws[w.Intent.ID] = &w
		}
	})
	if err != nil {
		return nil, fmt.Errorf("gate: restore: %w", err)
	}
	if bad > 0 {
		// Signed by the gate's own key, yet unreadable: a bug or a
		// foreign writer holding the key. Refuse to lead on a state
		// that lost records.
		return nil, fmt.Errorf("gate: restore: %d records of %s could not be read", bad, tp.GateState)
	}
	list := make([]*Withdrawal, 0, len(ws))
	for _, w := range ws {
		list = append(list, w)
	}
	book := make([]*BookEntry, 0, len(entries))
	for _, e := range entries {
		book = append(book, e)
	}
	arch := make([]Archived, 0, len(archived))
	for _, a := range archived {
		arch = append(arch, a)
	}
	c.Restore(list, trips, book, arch)
	c.PolicyInForce(pol.Hash)
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit.Restore(head); err != nil {
			return nil, fmt.Errorf("gate: restore the audit head: %w", err)
		}
	}
	s.core.Store(c)
	s.publishCounts()
	s.cfg.Log.Info("gate: restored", "topic", tp.GateState, "withdrawals", len(list), "trips", len(trips), "took", time.Since(start))
	return c, nil
}

// alert is a gate alert for cordon.alerts.
func alert(typ, severity, id, message string, details map[string]string, now time.Time) chain.Alert {
	return chain.Alert{V: chain.SchemaVersion, ID: typ + "/" + id, Type: typ, Severity: severity, Time: now.UTC(), Message: message, Details: details}
}
