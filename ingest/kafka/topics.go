package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicSpec is how one of cordon's topics is set up. The list (Specs) is
// the only place topic settings are written: topic creation (Ensure) and
// deploy/kafka/topics.sh both come from it.
type TopicSpec struct {
	Name string
	// Key is the topic's key under kafka.topics in the config file.
	Key string
	// Partitions is the production partition count; Fixed marks a topic
	// whose count is part of its meaning (the leader topic has one
	// partition, whoever holds it leads) and is never overridden.
	Partitions int
	Fixed      bool
	// Compact topics keep the newest record per key (cleanup.policy
	// compact); the others delete by RetentionMs (-1: never).
	Compact     bool
	RetentionMs int64
	// Transactional topics are written in Kafka transactions and read with
	// isolation read_committed.
	Transactional bool
	// Writers and Readers are the principals (one per role, see
	// Principals) that may write and read the topic: deploy/kafka/acls.sh
	// grants exactly these.
	Writers, Readers []string
	// Doc says what the topic holds.
	Doc string
}

// The Kafka principals, one per role of a production deployment: each
// instance runs some roles (config roles) and connects as the principal
// of what it runs; the intel importer and the exchange's ledger are
// separate programs.
const (
	PrincipalWatcher = "watcher"
	PrincipalLoader  = "loader"
	PrincipalCredit  = "credit"
	PrincipalAPI     = "api"
	PrincipalIntel   = "intel"
	PrincipalGate    = "gate"
	PrincipalLedger  = "ledger"
	PrincipalSigner  = "signer"
	PrincipalDetect  = "detect"
)

// The consumer groups and transactional ids cordon uses (acls.sh grants
// them; the components take their names from here).
const (
	// GroupCreditLeader is crediting's leader election.
	GroupCreditLeader = "cordon-credit-leader"
	// GroupGateLeader is the withdrawal gate's leader election.
	GroupGateLeader = "cordon-gate-leader"
	// GroupIndicatorCopySuffix follows the loader's group (clickhouse.group_id)
	// in the group of its copy of the indicators.
	GroupIndicatorCopySuffix = "-intel-by-feed"
	// GroupAlertCopySuffix follows it in the group of its copy of the
	// alerts.
	GroupAlertCopySuffix = "-alerts"
	// GroupNotifyPrefix and a webhook's name are the consumer group that
	// delivers the alerts to that webhook.
	GroupNotifyPrefix = "cordon-notify-"
	// TxCredit and TxIntelImport are the transactional ids of crediting
	// and of the intel importer.
	TxCredit      = "cordon-credit"
	TxIntelImport = "cordon-intel-import"
	// TxGate is the withdrawal gate's transactional id.
	TxGate = "cordon-gate"
	// TxSharing is partner sharing's transactional id: one instance
	// shares for the exchange, and a new one fences the old. Sharing
	// writes indicators, so it connects as the intel principal.
	TxSharing = "cordon-sharing"
	// TxSigner is the signer's transactional id: one signer instance
	// signs, and a new one fences the old.
	TxSigner = "cordon-signer"
	// TxDetect is detection's transactional id, GroupDetectLeader its
	// leader election.
	TxDetect          = "cordon-detect"
	GroupDetectLeader = "cordon-detect-leader"
)

// Principals are every principal, in the order acls.sh lists them.
var Principals = []string{PrincipalWatcher, PrincipalLoader, PrincipalCredit, PrincipalAPI, PrincipalIntel, PrincipalGate, PrincipalLedger, PrincipalSigner, PrincipalDetect}

const (
	day  = int64(24 * time.Hour / time.Millisecond)
	year = 365 * day
)

// Specs are the topics cordon uses, with the names t gives them.
func (t Topics) Specs() []TopicSpec {
	t.Fill()
	return []TopicSpec{
		{Name: t.Blocks, Key: "blocks", Partitions: 6, RetentionMs: -1, Writers: []string{PrincipalWatcher}, Readers: []string{PrincipalWatcher, PrincipalLoader, PrincipalCredit, PrincipalDetect},
			Doc: "block events (block_added / block_removed), one partition per chain stream; read back on every start"},
		{Name: t.Transactions, Key: "transactions", Partitions: 12, RetentionMs: 30 * day, Writers: []string{PrincipalWatcher}, Readers: []string{PrincipalLoader, PrincipalCredit, PrincipalDetect}, Doc: "part records of a block's transactions"},
		{Name: t.Transfers, Key: "transfers", Partitions: 12, RetentionMs: 30 * day, Writers: []string{PrincipalWatcher}, Readers: []string{PrincipalLoader, PrincipalCredit, PrincipalDetect}, Doc: "parts of a block's normalized transfers"},
		{Name: t.Outputs, Key: "outputs", Partitions: 12, RetentionMs: 30 * day, Writers: []string{PrincipalWatcher}, Readers: []string{PrincipalLoader, PrincipalCredit, PrincipalDetect}, Doc: "parts of a block's Bitcoin outputs"},
		{Name: t.Spends, Key: "spends", Partitions: 12, RetentionMs: 30 * day, Writers: []string{PrincipalWatcher}, Readers: []string{PrincipalLoader, PrincipalCredit, PrincipalDetect}, Doc: "parts of a block's Bitcoin spends"},
		{Name: t.Alerts, Key: "alerts", Partitions: 3, RetentionMs: year, Writers: []string{PrincipalWatcher, PrincipalLoader, PrincipalCredit, PrincipalAPI, PrincipalGate, PrincipalSigner, PrincipalDetect}, Readers: []string{PrincipalLoader, PrincipalDetect}, Doc: "alerts, keyed by alert id"},
		{Name: t.Incidents, Key: "incidents", Partitions: 1, Fixed: true, RetentionMs: -1, Writers: []string{PrincipalDetect}, Readers: []string{PrincipalDetect},
			Doc: "incidents' history, keyed by incident id: opened (by detection on a severe alert, or an operator), the alerts that joined, notes, closed, evidence bundles sealed (their manifest's hash); one partition (one order), never expired (docs/detect.md)"},
		{Name: t.NotifyDead, Key: "notify_dead", Partitions: 3, RetentionMs: year, Writers: []string{PrincipalDetect}, Readers: []string{PrincipalDetect},
			Doc: "alert deliveries to webhooks that failed their last attempt, keyed by webhook/delivery (docs/detect.md)"},
		{Name: t.Intel, Key: "intel", Partitions: 3, Compact: true, Transactional: true, Writers: []string{PrincipalIntel},
			Readers: []string{PrincipalIntel, PrincipalLoader, PrincipalCredit, PrincipalAPI, PrincipalDetect}, Doc: "indicators, keyed by feed/indicator id (imports, and partners' indicators through sharing)"},
		{Name: t.Addresses, Key: "addresses", Partitions: 3, Compact: true, Writers: []string{PrincipalAPI}, Readers: []string{PrincipalLoader, PrincipalCredit, PrincipalAPI, PrincipalDetect}, Doc: "the address registry, keyed by chain/network/address"},
		{Name: t.Deposits, Key: "deposits", Partitions: 6, Compact: true, Transactional: true, Writers: []string{PrincipalCredit}, Readers: []string{PrincipalCredit, PrincipalAPI, PrincipalIntel, PrincipalLedger},
			Doc: "deposit events (credited, held, reverted, ...), keyed by deposit id: the exchange's ledger reads it"},
		{Name: t.Decisions, Key: "decisions", Partitions: 3, RetentionMs: -1, Writers: []string{PrincipalAPI}, Readers: []string{PrincipalCredit}, Doc: "operators' decisions on held deposits (an audit log)"},
		{Name: t.CreditState, Key: "credit_state", Partitions: 6, Compact: true, Transactional: true, Writers: []string{PrincipalCredit}, Readers: []string{PrincipalCredit},
			Doc: "the crediting service's own state: kept deposits, checkpoint, restore markers"},
		{Name: t.Audit, Key: "audit", Partitions: 1, Fixed: true, RetentionMs: -1, Transactional: true, Writers: []string{PrincipalGate}, Readers: []string{PrincipalGate},
			Doc: "the withdrawal gate's hash-chained audit log, keyed by sequence number: one partition (the chain's order), never compacted or expired (docs/gate/audit.md)"},
		{Name: t.CreditLeader(), Key: "", Partitions: 1, Fixed: true, RetentionMs: -1, Writers: []string{}, Readers: []string{PrincipalCredit},
			Doc: "no records: the consumer group member holding its one partition credits"},
		{Name: t.Withdrawals, Key: "withdrawals", Partitions: 6, Compact: true, Transactional: true, Writers: []string{PrincipalGate}, Readers: []string{PrincipalGate, PrincipalIntel, PrincipalLedger},
			Doc: "withdrawal events (pending_approval, cooling, approved, denied, ...), keyed by withdrawal id: the exchange's withdrawal service reads it"},
		{Name: t.GateState, Key: "gate_state", Partitions: 6, Compact: true, Transactional: true, Writers: []string{PrincipalGate}, Readers: []string{PrincipalGate},
			Doc: "the withdrawal gate's own state: withdrawals with their approvals, accounts' history, the breaker, the audit head"},
		{Name: t.Prices, Key: "prices", Partitions: 1, Compact: true, Writers: []string{PrincipalAPI}, Readers: []string{PrincipalGate},
			Doc: "asset prices in dollars, keyed by chain/network/asset, published by the exchange through POST /v1/prices: the gate's tiers"},
		{Name: t.Sharing, Key: "sharing", Partitions: 1, Compact: true, Transactional: true, Writers: []string{PrincipalIntel}, Readers: []string{PrincipalIntel},
			Doc: "partner sharing's own state: the TAXII collections' objects, the versions held of partners' objects, sync positions (docs/sharing/README.md)"},
		{Name: t.SignRequests, Key: "sign_requests", Partitions: 3, RetentionMs: 30 * day, Writers: []string{PrincipalGate}, Readers: []string{PrincipalSigner},
			Doc: "signing requests: an unsigned transaction with its withdrawals' intents and signed approvals, keyed by request id, from the builder to the signer (docs/signing.md)"},
		{Name: t.SignerState, Key: "signer_state", Partitions: 3, Compact: true, Transactional: true, Writers: []string{PrincipalSigner}, Readers: []string{PrincipalSigner},
			Doc: "the signer's own state: every request it decided (signing before any plugin is asked, then signed with the transaction), its breaker's trips, its read positions"},
		{Name: t.SignResults, Key: "sign_results", Partitions: 3, Compact: true, Transactional: true, Writers: []string{PrincipalSigner}, Readers: []string{PrincipalGate},
			Doc: "the signer's answers, keyed by request id: the signed transaction, or why it was refused"},
		{Name: t.DetectState, Key: "detect_state", Partitions: 3, Compact: true, Transactional: true, Writers: []string{PrincipalDetect}, Readers: []string{PrincipalDetect},
			Doc: "detection's own state: its wallets' recent history, the recent blocks' undo log and its read positions (docs/detect.md)"},
		{Name: t.DetectLeader(), Key: "", Partitions: 1, Fixed: true, RetentionMs: -1, Writers: []string{}, Readers: []string{PrincipalDetect},
			Doc: "no records: the consumer group member holding its one partition runs detection"},
		{Name: t.GateLeader(), Key: "", Partitions: 1, Fixed: true, RetentionMs: -1, Writers: []string{}, Readers: []string{PrincipalGate},
			Doc: "no records: the consumer group member holding its one partition runs the withdrawal gate"},
	}
}

// CreditLeader is the one-partition topic whose holder runs the crediting
// service (named after the deposits topic).
func (t Topics) CreditLeader() string {
	t.Fill()
	return t.Deposits + "-leader"
}

// GateLeader is the one-partition topic whose holder runs the withdrawal
// gate (named after the withdrawals topic).
func (t Topics) GateLeader() string {
	t.Fill()
	return t.Withdrawals + "-leader"
}

// Spec returns the spec of the topic named name.
func (t Topics) Spec(name string) (TopicSpec, bool) {
	for _, s := range t.Specs() {
		if s.Name == name {
			return s, true
		}
	}
	return TopicSpec{}, false
}

// minISR is min.insync.replicas for a replication factor: 2 with three or
// more replicas (cordon writes with acks=all), else 1.
func minISR(rf int) int { return max(1, min(2, rf-1)) }

// Configs are the topic configs s is created with.
func (s TopicSpec) Configs(replication int) map[string]string {
	c := map[string]string{"min.insync.replicas": strconv.Itoa(minISR(replication))}
	if s.Compact {
		c["cleanup.policy"] = "compact"
	} else {
		c["cleanup.policy"] = "delete"
		c["retention.ms"] = strconv.FormatInt(s.RetentionMs, 10)
	}
	return c
}

// partitionsFor is the partition count cordon creates s with: the
// configured kafka.partitions when set, the spec's otherwise.
func (s TopicSpec) partitionsFor(cfg Config) int {
	if s.Fixed || cfg.Partitions <= 0 {
		return s.Partitions
	}
	return cfg.Partitions
}

// ErrTopicMissing is wrapped by Ensure when a topic does not exist and
// cordon may not create it.
var ErrTopicMissing = errors.New("kafka: topic missing")

// Ensure makes sure the named topics exist (every topic in cfg.Topics'
// Specs when none is named). With cfg.CreateTopics it creates the missing
// ones with their spec's settings; without, it only checks that they
// exist and names the missing ones, so a component never starts on a
// cluster where its topics were not made.
func Ensure(ctx context.Context, cfg Config, names ...string) error {
	specs := cfg.Topics.Specs()
	if len(names) > 0 {
		var picked []TopicSpec
		for _, n := range names {
			s, ok := cfg.Topics.Spec(n)
			if !ok {
				return fmt.Errorf("kafka: ensure topic %q: not one of cordon's topics", n)
			}
			picked = append(picked, s)
		}
		specs = picked
	}
	// Metadata answers are cached for MetadataMinAge (5s by default),
	// which the wait for created topics below would sit out.
	cl, err := newFranz(cfg, "-admin", kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	list := make([]string, len(specs))
	for i, s := range specs {
		list[i] = s.Name
	}
	missing := func() ([]string, error) {
		md, err := admin.Metadata(ctx, list...)
		if err != nil {
			return nil, fmt.Errorf("kafka: metadata of %v: %w", list, err)
		}
		var out []string
		for _, n := range list {
			t, ok := md.Topics[n]
			if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) || (t.Err == nil && len(t.Partitions) == 0) {
				out = append(out, n)
			} else if t.Err != nil {
				return nil, fmt.Errorf("kafka: metadata of %s: %w", n, t.Err)
			}
		}
		return out, nil
	}
	absent, err := missing()
	if err != nil {
		return err
	}
	if len(absent) == 0 {
		return nil
	}
	if !cfg.CreateTopics {
		return fmt.Errorf("%w: %s (kafka.create_topics is false: create them with deploy/kafka/topics.sh)", ErrTopicMissing,
			strings.Join(absent, ", "))
	}
	rf := max(cfg.ReplicationFactor, 1)
	for _, n := range absent {
		s, _ := cfg.Topics.Spec(n)
		conf := map[string]*string{}
		for k, v := range s.Configs(rf) {
			conf[k] = &v
		}
		res, err := admin.CreateTopic(ctx, int32(s.partitionsFor(cfg)), int16(rf), conf, n)
		if err == nil {
			err = res.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", n, err)
		}
	}
	// Wait until the metadata shows every topic, so the first write does
	// not race topic creation.
	deadline := time.Now().Add(30 * time.Second)
	for {
		absent, err = missing()
		if err == nil && len(absent) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("kafka: topics %v not visible in metadata after creation", absent), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Script is deploy/kafka/topics.sh: the Kafka CLI commands that create the
// default topics with the settings Ensure would use, for clusters where a
// platform team creates topics (kafka.create_topics: false).
func Script() string {
	var b strings.Builder
	b.WriteString(`#!/usr/bin/env bash
# Creates every topic cordon uses, with the settings cordon itself creates
# them with. Generated from ingest/kafka/topics.go (Topics.Specs) by
# ` + "`cordon topics --script > deploy/kafka/topics.sh`" + `;
# a test keeps the two equal. Edit the specs, not this file.
# Usage: BOOTSTRAP=kafka-1:9092 [CONFIG=client.properties] [REPLICATION=3] ./topics.sh
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP to host:port of a broker}"
REPLICATION="${REPLICATION:-3}"
MIN_ISR=$(( REPLICATION >= 3 ? 2 : 1 ))
cmd=(kafka-topics.sh --bootstrap-server "$BOOTSTRAP")
[ -n "${CONFIG:-}" ] && cmd+=(--command-config "$CONFIG")
create() { # name partitions cleanup.policy [retention.ms]
  local extra=()
  [ "$3" = delete ] && extra=(--config retention.ms="$4")
  "${cmd[@]}" --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor "$REPLICATION" \
    --config min.insync.replicas="$MIN_ISR" --config cleanup.policy="$3" "${extra[@]}"
}
`)
	for _, s := range DefaultTopics().Specs() {
		if s.Compact {
			fmt.Fprintf(&b, "create %s %d compact\n", s.Name, s.Partitions)
		} else {
			fmt.Fprintf(&b, "create %s %d delete %d\n", s.Name, s.Partitions, s.RetentionMs)
		}
	}
	return b.String()
}

// ACLScript is deploy/kafka/acls.sh: the Kafka CLI commands that grant
// each principal exactly what its role needs (TopicSpec.Writers and
// Readers, the consumer groups and transactional ids cordon uses).
func ACLScript() string {
	var b strings.Builder
	b.WriteString(`#!/usr/bin/env bash
# Grants each of cordon's roles its own Kafka principal's rights, and no
# more: the watchers write only blocks and their parts, the API only
# registry entries and decisions, crediting only deposits and its state,
# the intel importer and partner sharing (one principal: both write
# indicators) only indicators and sharing's state; the ledger only reads
# deposits.
# Generated from ingest/kafka/topics.go (Topics.Specs) by
# ` + "`cordon topics --acls > deploy/kafka/acls.sh`" + `;
# a test keeps the two equal. Edit the specs, not this file.
# Usage: BOOTSTRAP=kafka-1:9092 [CONFIG=admin.properties] ./acls.sh
#   principals: PRINCIPAL_WATCHER=User:cordon-watcher ... (the defaults below)
#   groups:     CLICKHOUSE_GROUP=cordon-clickhouse LEDGER_GROUP=cordon-ledger
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP to host:port of a broker}"
cmd=(kafka-acls.sh --bootstrap-server "$BOOTSTRAP")
[ -n "${CONFIG:-}" ] && cmd+=(--command-config "$CONFIG")
allow() { # principal operation... --resource-type name
  local p="$1"; shift
  "${cmd[@]}" --add --allow-principal "$p" "$@"
}
`)
	for _, p := range Principals {
		fmt.Fprintf(&b, "%s=\"${%s:-User:cordon-%s}\"\n", principalVar(p), principalVar(p), p)
	}
	b.WriteString("CLICKHOUSE_GROUP=\"${CLICKHOUSE_GROUP:-cordon-clickhouse}\"\nLEDGER_GROUP=\"${LEDGER_GROUP:-cordon-ledger}\"\n\n# Topics.\n")
	for _, s := range DefaultTopics().Specs() {
		for _, p := range s.Writers {
			fmt.Fprintf(&b, "allow \"$%s\" --operation Write --operation Describe --topic %s\n", principalVar(p), s.Name)
		}
		for _, p := range s.Readers {
			fmt.Fprintf(&b, "allow \"$%s\" --operation Read --operation Describe --topic %s\n", principalVar(p), s.Name)
		}
	}
	b.WriteString(`
# Consumer groups: the ClickHouse loader and its copies of the indicators and alerts,
# crediting's leader election, the ledger.
allow "$PRINCIPAL_LOADER" --operation Read --group "$CLICKHOUSE_GROUP"
allow "$PRINCIPAL_LOADER" --operation Read --group "$CLICKHOUSE_GROUP` + GroupIndicatorCopySuffix + `"
allow "$PRINCIPAL_LOADER" --operation Read --group "$CLICKHOUSE_GROUP` + GroupAlertCopySuffix + `"
allow "$PRINCIPAL_CREDIT" --operation Read --group ` + GroupCreditLeader + `
allow "$PRINCIPAL_GATE" --operation Read --group ` + GroupGateLeader + `
allow "$PRINCIPAL_DETECT" --operation Read --group ` + GroupDetectLeader + `
allow "$PRINCIPAL_DETECT" --operation Read --resource-pattern-type prefixed --group ` + GroupNotifyPrefix + `
allow "$PRINCIPAL_LEDGER" --operation Read --group "$LEDGER_GROUP"

# Transactional writers: crediting, the intel importer, the gate, partner sharing and the signer (franz-go's
# producers are idempotent, which brokers before 3.0 grant on the cluster).
allow "$PRINCIPAL_CREDIT" --operation Write --operation Describe --transactional-id ` + TxCredit + `
allow "$PRINCIPAL_INTEL" --operation Write --operation Describe --transactional-id ` + TxIntelImport + `
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --transactional-id ` + TxGate + `
allow "$PRINCIPAL_INTEL" --operation Write --operation Describe --transactional-id ` + TxSharing + `
allow "$PRINCIPAL_SIGNER" --operation Write --operation Describe --transactional-id ` + TxSigner + `
allow "$PRINCIPAL_DETECT" --operation Write --operation Describe --transactional-id ` + TxDetect + `
allow "$PRINCIPAL_CREDIT" --operation IdempotentWrite --cluster
allow "$PRINCIPAL_INTEL" --operation IdempotentWrite --cluster
allow "$PRINCIPAL_GATE" --operation IdempotentWrite --cluster
allow "$PRINCIPAL_SIGNER" --operation IdempotentWrite --cluster
`)
	return b.String()
}

func principalVar(p string) string { return "PRINCIPAL_" + strings.ToUpper(p) }

// DetectLeader is the one-partition topic whose holder runs detection
// (named after its state topic).
func (t Topics) DetectLeader() string {
	t.Fill()
	return t.DetectState + "-leader"
}
