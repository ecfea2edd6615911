package gate

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/signer/audit"
)

// ChainAuditor writes the gate's entries to the hash-chained audit log
// (package audit), with a signed checkpoint whenever one is due.
type ChainAuditor struct {
	Chain *audit.Chain
	Topic string
}

// Append implements Auditor: the entries' records, then a checkpoint
// when due, and the new head (the last record) for the gate's state.
func (a *ChainAuditor) Append(entries []Entry, _ time.Time) ([]kafka.Record, json.RawMessage, error) {
	var out []kafka.Record
	var last audit.Record
	add := func(r audit.Record) error {
		m, err := r.Message(a.Topic)
		if err != nil {
			return err
		}
		out, last = append(out, m), r
		return nil
	}
	for _, e := range entries {
		r, err := a.Chain.Append(e.Kind, e.Subject, e.Actor, e.Body)
		if err != nil {
			a.Chain.Rollback()
			return nil, nil, fmt.Errorf("audit %s of %s: %w", e.Kind, e.Subject, err)
		}
		if err := add(r); err != nil {
			a.Chain.Rollback()
			return nil, nil, err
		}
	}
	if a.Chain.Due() {
		r, err := a.Chain.Checkpoint()
		if err == nil {
			err = add(r)
		}
		if err != nil {
			a.Chain.Rollback()
			return nil, nil, fmt.Errorf("audit checkpoint: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, nil, nil
	}
	head, err := json.Marshal(&last)
	return out, head, err
}

// Due implements Auditor.
func (a *ChainAuditor) Due() bool { return a.Chain.Due() }

// Commit implements Auditor.
func (a *ChainAuditor) Commit(json.RawMessage) { a.Chain.Commit() }

// Abort implements Auditor.
func (a *ChainAuditor) Abort() { a.Chain.Rollback() }

// Restore implements Auditor: head is the last record the gate's state
// remembers (nil: the log is empty).
func (a *ChainAuditor) Restore(head json.RawMessage) error {
	if len(head) == 0 {
		return a.Chain.Restore(nil)
	}
	var r audit.Record
	if err := json.Unmarshal(head, &r); err != nil {
		return fmt.Errorf("the audit head in the gate's state: %w", err)
	}
	return a.Chain.Restore(&r)
}
