package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/signer/intent"
)

// ServiceConfig configures the signer's service.
type ServiceConfig struct {
	Kafka kafka.Config
	// NewVault makes an empty vault for each start: its state is then
	// restored from the signer's state topic.
	NewVault func() (*Vault, error)
	Clock    clock.Clock
	Log      *slog.Logger
	// TransactionalID defaults to kafka.TxSigner; Retry (default 2s) is
	// how long a signing that did not finish waits before it is tried
	// again.
	TransactionalID string
	Retry           time.Duration
	// Committed, when set, is called after each commit with the entries
	// it recorded (tests and the dev status line; read-only).
	Committed func([]Entry)
	// Metrics (nil: none).
	Metrics *Metrics
}

// Service runs the vault on Kafka: it reads cordon.sign-requests from
// the positions its own state holds, decides each request, records the
// decision (and for an admitted one, that it is signing) in
// cordon.signer-state in the same transaction as its new position,
// before any plugin is asked; then signs and records the signed
// transaction with its result on cordon.sign-results. A restart
// restores every decision and signs again exactly the transactions that
// were recorded as signing and not as signed.
type Service struct {
	cfg   ServiceConfig
	vault *Vault
	w     *kafka.TxWriter
	pos   map[int32]int64
}

// State keys of cordon.signer-state.
const (
	entryPrefix = "r/"
	tripPrefix  = "t/"
	posPrefix   = "pos/"
	fenceKey    = "fence"
)

// Record types on cordon.sign-requests.
const (
	// TypeRequest is a signing request (the default).
	TypeRequest = "sign-request"
	// TypeReset carries a reset approval of a breaker trip (Reset).
	TypeReset = "signer-reset"
)

// ResetRecord is a reset approval of trip Trip on cordon.sign-requests.
type ResetRecord struct {
	Trip     string          `json:"trip"`
	Approval intent.Approval `json:"approval"`
}

var stateHeaders = []kafka.Header{{Key: kafka.HeaderType, Value: []byte("signer-state")}}

// NewService checks cfg.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.NewVault == nil {
		return nil, errors.New("vault: service: no vault")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = kafka.TxSigner
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 2 * time.Second
	}
	cfg.Kafka.Topics.Fill()
	return &Service{cfg: cfg}, nil
}

// Run restores the state and serves requests until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tp := s.cfg.Kafka.Topics
	if err := kafka.Ensure(ctx, s.cfg.Kafka, tp.SignRequests, tp.SignerState, tp.SignResults, tp.Alerts); err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	w, err := kafka.NewTxWriter(s.cfg.Kafka, s.cfg.TransactionalID, tp.SignerState, 0)
	if err != nil {
		return fmt.Errorf("signer: connect: %w", err)
	}
	defer w.Close()
	s.w = w
	if err := s.restore(ctx); err != nil {
		return err
	}
	for _, e := range s.vault.Unfinished() {
		s.cfg.Log.Warn("signer: resuming a signing recorded before the restart", "request", e.Request.ID)
		if err := s.sign(ctx, e, nil); err != nil {
			return err
		}
	}
	parts, err := kafka.Partitions(ctx, s.cfg.Kafka, tp.SignRequests)
	if err != nil {
		return err
	}
	at := map[int32]int64{}
	for _, p := range parts[tp.SignRequests] {
		at[p] = -1
		if o, ok := s.pos[p]; ok {
			at[p] = o
		}
	}
	rd, err := kafka.NewReader(s.cfg.Kafka, map[string]map[int32]int64{tp.SignRequests: at})
	if err != nil {
		return err
	}
	defer rd.Close()
	s.cfg.Log.Info("signer: serving", "topic", tp.SignRequests, "policy", s.vault.PolicyHash())
	retry := time.NewTicker(s.cfg.Retry)
	defer retry.Stop()
	for {
		recs, err := rd.Poll(ctx, 500*time.Millisecond)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for _, r := range recs {
			if err := s.handle(ctx, r); err != nil {
				return err
			}
		}
		select {
		case <-retry.C:
			for _, e := range s.vault.Unfinished() {
				if err := s.sign(ctx, e, nil); err != nil {
					return err
				}
			}
		default:
		}
	}
}

// restore fences any older instance and rebuilds the vault from the
// state topic.
func (s *Service) restore(ctx context.Context) error {
	tp := s.cfg.Kafka.Topics
	start := time.Now()
	f, err := s.w.Fence(ctx, tp.SignerState, fenceKey, stateHeaders)
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	v, err := s.cfg.NewVault()
	if err != nil {
		return err
	}
	s.vault, s.pos = v, map[int32]int64{}
	var bad []string
	n := 0
	err = kafka.ReadToFence(ctx, s.cfg.Kafka, tp.SignerState, f, func(r *kafka.Record) {
		k := string(r.Key)
		switch {
		case strings.HasPrefix(k, entryPrefix):
			var e Entry
			if err := json.Unmarshal(r.Value, &e); err != nil {
				bad = append(bad, k)
				return
			}
			v.Restore(&e)
			n++
		case strings.HasPrefix(k, tripPrefix):
			id := strings.TrimPrefix(k, tripPrefix)
			if len(r.Value) == 0 {
				v.RestoreTrip(id, nil)
				return
			}
			var t Trip
			if err := json.Unmarshal(r.Value, &t); err != nil {
				bad = append(bad, k)
				return
			}
			v.RestoreTrip(id, &t)
		case strings.HasPrefix(k, posPrefix):
			p, err1 := strconv.ParseInt(strings.TrimPrefix(k, posPrefix), 10, 32)
			o, err2 := strconv.ParseInt(string(r.Value), 10, 64)
			if err1 != nil || err2 != nil {
				bad = append(bad, k)
				return
			}
			s.pos[int32(p)] = o
		}
	})
	if err != nil {
		return fmt.Errorf("signer: restore %s: %w", tp.SignerState, err)
	}
	if len(bad) > 0 {
		// A record of its own state it cannot read: the signer does not
		// guess what it decided.
		return fmt.Errorf("signer: %s holds records it cannot read: %s", tp.SignerState, strings.Join(bad, ", "))
	}
	s.cfg.Log.Info("signer: restored", "topic", tp.SignerState, "entries", n, "trips", len(v.Trips()),
		"unfinished", len(v.Unfinished()), "took", time.Since(start))
	s.cfg.Metrics.setTrips(len(v.Trips()))
	return nil
}

func (s *Service) posRecord(r *kafka.Record) kafka.Record {
	s.pos[int32(r.Partition)] = r.Offset + 1
	return kafka.Record{Key: []byte(posPrefix + strconv.Itoa(r.Partition)), Value: []byte(strconv.FormatInt(r.Offset+1, 10)), Headers: stateHeaders}
}

func entryRecord(e *Entry) (kafka.Record, error) {
	b, err := json.Marshal(e)
	return kafka.Record{Key: []byte(entryPrefix + e.Request.ID), Value: b, Headers: stateHeaders}, err
}

func (s *Service) resultRecord(e *Entry) (kafka.Record, error) {
	b, err := json.Marshal(e.Result())
	return kafka.Record{Topic: s.cfg.Kafka.Topics.SignResults, Key: []byte(e.Request.ID), Value: b,
		Headers: []kafka.Header{{Key: kafka.HeaderType, Value: []byte("sign-result")}}}, err
}

func (s *Service) alertRecord(a chain.Alert) kafka.Record {
	b, _ := json.Marshal(&a) //nolint:errcheck // an alert of strings always marshals
	return kafka.Record{Topic: s.cfg.Kafka.Topics.Alerts, Key: []byte(a.ID), Value: b}
}

func (s *Service) commit(ctx context.Context, recs []kafka.Record, entries ...*Entry) error {
	if err := s.w.Commit(ctx, recs); err != nil {
		return fmt.Errorf("signer: commit: %w", err)
	}
	if s.cfg.Committed != nil {
		out := make([]Entry, len(entries))
		for i, e := range entries {
			out[i] = *e
		}
		s.cfg.Committed(out)
	}
	return nil
}

// handle decides one record of cordon.sign-requests.
func (s *Service) handle(ctx context.Context, r *kafka.Record) error {
	now := s.cfg.Clock.Now()
	if typ := headerOf(r.Headers, kafka.HeaderType); typ == TypeReset {
		return s.reset(ctx, r, now)
	}
	req, err := DecodeRequest(r.Value)
	if err != nil {
		s.cfg.Log.Error("signer: unreadable request", "partition", r.Partition, "offset", r.Offset, "err", err)
		s.cfg.Metrics.refusedOne("request")
		a := chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("signer_bad_request/%d/%d", r.Partition, r.Offset), Type: "signer_bad_request",
			Severity: "critical", Time: now.UTC(), Message: "the signer could not read a signing request: " + err.Error(),
			Details: map[string]string{"partition": strconv.Itoa(r.Partition), "offset": strconv.FormatInt(r.Offset, 10)}}
		return s.commit(ctx, []kafka.Record{s.posRecord(r), s.alertRecord(a)})
	}
	d := s.vault.Admit(req, now)
	e := d.Entry
	switch {
	case d.Refusal != nil:
		s.cfg.Metrics.refusedOne(d.Refusal.Code)
		recs := append([]kafka.Record{s.posRecord(r)}, s.refusalRecords(req, d, now)...)
		if !d.New {
			// A request id decided before, asked again with other bytes:
			// the first decision and its result stay.
			return s.commit(ctx, recs)
		}
		er, err := entryRecord(e)
		if err != nil {
			return err
		}
		res, err := s.resultRecord(e)
		if err != nil {
			return err
		}
		return s.commit(ctx, append(recs, er, res), e)
	case !d.New && e.Status == StatusSigning:
		// A re-delivery of a request recorded as signing before a restart.
		return s.sign(ctx, e, r)
	case !d.New:
		// A re-delivery of a request decided before: its result stands.
		return s.commit(ctx, []kafka.Record{s.posRecord(r)})
	}
	// Admitted: recorded as signing, with the new position, before any
	// plugin is asked.
	er, err := entryRecord(e)
	if err != nil {
		return err
	}
	if err := s.commit(ctx, []kafka.Record{er, s.posRecord(r)}, e); err != nil {
		return err
	}
	s.cfg.Metrics.admittedOne(req.Chain)
	return s.sign(ctx, e, nil)
}

// refusalRecords are the alert of a refusal and the trip it pulled.
func (s *Service) refusalRecords(req *Request, d Decision, now time.Time) []kafka.Record {
	sev := "warning"
	if d.Trip != nil {
		sev = "critical"
	}
	details := map[string]string{"request": req.ID, "code": d.Refusal.Code, "wallet": req.Wallet, "withdrawals": strings.Join(req.IDs(), ",")}
	a := chain.Alert{V: chain.SchemaVersion, ID: "signer_refused/" + req.ID + "/" + req.TxHash()[:16], Type: "signer_refused", Severity: sev,
		Chain: chain.Chain(req.Chain), Network: req.Network, Time: now.UTC(),
		Message: "the signer refused to sign request " + req.ID + ": " + d.Refusal.Reason, Details: details}
	recs := []kafka.Record{s.alertRecord(a)}
	if d.Trip != nil {
		b, _ := json.Marshal(d.Trip) //nolint:errcheck // a trip always marshals
		recs = append(recs, kafka.Record{Key: []byte(tripPrefix + d.Trip.ID), Value: b, Headers: stateHeaders},
			s.alertRecord(chain.Alert{V: chain.SchemaVersion, ID: "signer_breaker_tripped/" + d.Trip.ID, Type: "signer_breaker_tripped",
				Severity: "critical", Chain: chain.Chain(req.Chain), Network: req.Network, Time: now.UTC(),
				Message: "the signer's breaker holds " + req.Chain + "/" + req.Network + " until approvers reset it: " + d.Refusal.Reason,
				Details: map[string]string{"trip": d.Trip.ID, "request": req.ID, "code": d.Trip.Code}}))
		s.cfg.Metrics.trippedOne()
	}
	return recs
}

// sign signs an entry recorded as signing and records the outcome with
// its result (and the position of r, when the request was a re-delivery).
func (s *Service) sign(ctx context.Context, e *Entry, r *kafka.Record) error {
	start := time.Now()
	err := s.vault.Sign(ctx, e, s.cfg.Clock.Now())
	if errors.Is(err, ErrRetry) {
		s.cfg.Metrics.retriedOne()
		if r != nil {
			return s.commit(ctx, []kafka.Record{s.posRecord(r)})
		}
		return nil
	}
	if err != nil {
		return err
	}
	s.cfg.Metrics.signedOne(e, time.Since(start))
	er, err := entryRecord(e)
	if err != nil {
		return err
	}
	res, err := s.resultRecord(e)
	if err != nil {
		return err
	}
	recs := []kafka.Record{er, res}
	if r != nil {
		recs = append(recs, s.posRecord(r))
	}
	if e.Status == StatusFailed {
		recs = append(recs, s.alertRecord(chain.Alert{V: chain.SchemaVersion, ID: "signer_failed/" + e.Request.ID, Type: "signer_failed",
			Severity: "critical", Chain: chain.Chain(e.Request.Chain), Network: e.Request.Network, Time: s.cfg.Clock.Now().UTC(),
			Message: "signing request " + e.Request.ID + " failed; its withdrawals need new withdrawals: " + e.Reason,
			Details: map[string]string{"request": e.Request.ID}}))
	}
	return s.commit(ctx, recs, e)
}

// reset applies a reset approval of a trip.
func (s *Service) reset(ctx context.Context, r *kafka.Record, now time.Time) error {
	var rr ResetRecord
	err := json.Unmarshal(r.Value, &rr)
	var t *Trip
	var done bool
	if err == nil {
		t, done, err = s.vault.Reset(rr.Trip, rr.Approval)
	}
	recs := []kafka.Record{s.posRecord(r)}
	switch {
	case err != nil:
		s.cfg.Log.Error("signer: reset refused", "trip", rr.Trip, "approver", rr.Approval.Approver, "err", err)
		recs = append(recs, s.alertRecord(chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("signer_reset_refused/%d/%d", r.Partition, r.Offset),
			Type: "signer_reset_refused", Severity: "critical", Time: now.UTC(), Message: "a reset of the signer's breaker was refused: " + err.Error(),
			Details: map[string]string{"trip": rr.Trip, "approver": rr.Approval.Approver}}))
	case done:
		recs = append(recs, kafka.Record{Key: []byte(tripPrefix + t.ID), Headers: stateHeaders},
			s.alertRecord(chain.Alert{V: chain.SchemaVersion, ID: "signer_breaker_reset/" + t.ID, Type: "signer_breaker_reset", Severity: "warning",
				Chain: chain.Chain(t.Chain), Network: t.Network, Time: now.UTC(), Message: "the signer's breaker no longer holds " + t.Chain + "/" + t.Network,
				Details: map[string]string{"trip": t.ID}}))
	default:
		b, _ := json.Marshal(t) //nolint:errcheck // a trip always marshals
		recs = append(recs, kafka.Record{Key: []byte(tripPrefix + t.ID), Value: b, Headers: stateHeaders})
	}
	return s.commit(ctx, recs)
}

func headerOf(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
