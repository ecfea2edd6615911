package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/signer/audit"
)

// TestAuditVerify: cordon audit verify passes on a clean log, and names
// the record (and fails) for one byte changed, one record removed and
// two records swapped, each written to the topic by an attacker with
// write access to it.
func TestAuditVerify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	seed := sha256.Sum256([]byte("cordon audit cli test"))
	key := audit.KeyOf(ed25519.NewKeyFromSeed(seed[:]))
	c, err := audit.New(audit.Config{CheckpointEvery: 25}, key, clock.NewManual(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	require.NoError(t, err)
	var clean []kafka.KeyValue
	add := func(r audit.Record) {
		m, err := r.Message("")
		require.NoError(t, err)
		clean = append(clean, kafka.KeyValue{Key: string(m.Key), Value: m.Value})
	}
	for i := range 200 {
		r, err := c.Append(audit.KindRequest, fmt.Sprintf("wd_%d", i), "token-exchange", map[string]any{"amount": fmt.Sprint(1000 + i)})
		require.NoError(t, err)
		add(r)
		if c.Due() {
			cp, err := c.Checkpoint()
			require.NoError(t, err)
			add(cp)
		}
		c.Commit()
	}
	seqOf := func(i int) uint64 {
		r, err := audit.DecodeRecord(clean[i].Value)
		require.NoError(t, err)
		return r.Seq
	}
	const mid = 100
	logs := map[string][]kafka.KeyValue{"clean": clean}
	changed := slices.Clone(clean)
	v := bytes.Clone(changed[mid].Value)
	i := bytes.Index(v, []byte(`\"amount\":\"1`)) + len(`\"amount\":\"`)
	v[i] = '9'
	changed[mid].Value = v
	logs["changed"] = changed
	logs["removed"] = slices.Delete(slices.Clone(clean), mid, mid+1)
	swapped := slices.Clone(clean)
	swapped[mid], swapped[mid+1] = swapped[mid+1], swapped[mid]
	logs["swapped"] = swapped

	cfg := kafka.Config{Brokers: brokers, CreateTopics: true, Auth: kafkatest.Keys()}
	for name := range logs {
		cfg.Topics.Audit = "audit-" + name
		require.NoError(t, kafka.Ensure(ctx, cfg, cfg.Topics.Audit))
	}
	prod, err := kafka.New(kafka.Config{Brokers: brokers}, nil, nil)
	require.NoError(t, err)
	defer func() { _ = prod.Close() }()
	for name, kvs := range logs {
		require.NoError(t, prod.PublishKeyed(ctx, "audit-"+name, "", kvs))
	}
	run := func(name string, extra ...string) (string, error) {
		var out bytes.Buffer
		args := append([]string{"verify", "--brokers", strings.Join(brokers, ","), "--topic", "audit-" + name, "--trust", key.Public()}, extra...)
		err := runAudit(ctx, args, &out)
		return out.String(), err
	}

	out, err := run("clean")
	require.NoError(t, err, out)
	require.Contains(t, out, fmt.Sprintf("audit log verified: %d records", len(clean)))
	require.Contains(t, out, "last checkpoint: record 208 at offset 207")
	require.NotContains(t, out, "warning", "the log ends with a checkpoint: nothing is unsigned")
	out, err = run("clean", "--json")
	require.NoError(t, err)
	var rep audit.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)
	require.Equal(t, uint64(len(clean)), rep.HeadSeq)

	for _, tc := range []struct {
		name, reason string
		seq          uint64
	}{
		{"changed", audit.Altered, seqOf(mid)},
		{"removed", audit.Removed, seqOf(mid + 1)},
		{"swapped", audit.Reordered, seqOf(mid + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.name, "--json")
			require.ErrorIs(t, err, audit.ErrTampered, "a non-zero exit")
			var rep audit.Report
			require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
			require.False(t, rep.OK)
			require.Equal(t, tc.reason, rep.Problem.Reason, rep.Problem.Detail)
			require.Equal(t, tc.seq, rep.Problem.Seq, rep.Problem.Detail)
			require.Equal(t, int64(mid), rep.Problem.Offset)
			out, err = run(tc.name)
			require.Error(t, err)
			require.Contains(t, out, "AUDIT LOG TAMPERED WITH: "+tc.reason)
			require.Contains(t, out, fmt.Sprintf("record %d at offset %d", tc.seq, mid))
		})
	}

	// The tail cut off: verifies alone, fails against the head written
	// down before.
	cut := "cut"
	cfg.Topics.Audit = "audit-" + cut
	require.NoError(t, kafka.Ensure(ctx, cfg, cfg.Topics.Audit))
	prod2, err := kafka.New(kafka.Config{Brokers: brokers}, nil, nil)
	require.NoError(t, err)
	defer func() { _ = prod2.Close() }()
	require.NoError(t, prod2.PublishKeyed(ctx, "audit-cut", "", clean[:len(clean)-5]))
	_, err = run(cut)
	require.NoError(t, err)
	out, err = run(cut, "--expect", fmt.Sprintf("%d:%s", rep.HeadSeq, rep.HeadHash))
	require.ErrorIs(t, err, audit.ErrTampered)
	require.Contains(t, out, audit.Truncated)

	t.Setenv("CORDON_AUDIT_TRUST", "")
	err = runAudit(ctx, []string{"verify", "--brokers", strings.Join(brokers, ","), "--topic", "audit-clean"}, &bytes.Buffer{})
	require.ErrorContains(t, err, "no --trust key")
	err = runAudit(ctx, []string{"verify", "--brokers", strings.Join(brokers, ","), "--topic", "audit-clean", "--trust", "bad"}, &bytes.Buffer{})
	require.ErrorContains(t, err, "--trust")
}

// TestAuditCmd: the command main dispatches to refuses what it does not
// know, naming it.
func TestAuditCmd(t *testing.T) {
	require.ErrorContains(t, auditCmd([]string{"rewrite"}), `unknown subcommand "rewrite"`)
	require.ErrorContains(t, auditCmd(nil), "no subcommand")
	require.ErrorContains(t, auditCmd([]string{"verify", "extra"}), "unexpected arguments")
}
