package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/recordauth"
)

const keysUsage = `usage: cordon keys generate [--role api|credit|intel|all]

Generates Ed25519 record keys (docs/security.md) and prints the
record_auth section to put in the config files: each role's private key
goes only to the instances writing as that role (keep it in a file or an
environment variable: file:PATH, env:NAME), every public key goes to
every instance's record_auth.trust.
`

func cmdKeys(args []string) error {
	if len(args) == 0 || args[0] != "generate" {
		fmt.Fprint(os.Stderr, keysUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("keys: want the generate subcommand")
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	role := fs.String("role", "all", "the role to generate a key for: api, credit, intel, gate, signer or all")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	roles := recordauth.Roles
	if *role != "all" {
		r := recordauth.Role(*role)
		if !knownRole(r) {
			return fmt.Errorf("keys generate: --role %q: want api, credit, intel, gate, signer or all", *role)
		}
		roles = []recordauth.Role{r}
	}
	y, err := keysYAML(roles)
	if err != nil {
		return err
	}
	fmt.Print(y)
	return nil
}

// keysYAML is a record_auth section with new keys for roles.
func keysYAML(roles []recordauth.Role) (string, error) {
	var keys, trust strings.Builder
	for _, r := range roles {
		priv, pub, err := recordauth.GenerateKey()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&keys, "    %s: %s   # private: only on the %s instances\n", r, priv, r)
		fmt.Fprintf(&trust, "    %s: [%s]\n", r, pub)
	}
	return fmt.Sprintf("record_auth:\n  keys:\n%s  trust:\n%s", keys.String(), trust.String()), nil
}

func knownRole(r recordauth.Role) bool {
	for _, k := range recordauth.Roles {
		if k == r {
			return true
		}
	}
	return false
}

// requireAuth checks that kc trusts a key of every role whose records
// every instance reads (api, credit, intel) and of each of sign, and can
// sign as each of sign, naming the missing config keys.
func requireAuth(kc kafka.Config, what string, sign ...recordauth.Role) error {
	var missing []string
	for _, r := range recordauth.Roles {
		if (r == recordauth.Gate || r == recordauth.Vault || r == recordauth.Detect) && !slices.Contains(sign, r) {
			continue // only the gate and the signer read their records
		}
		if !kc.Auth.Trusts(r) {
			missing = append(missing, "record_auth.trust."+string(r))
		}
	}
	for _, r := range sign {
		if _, ok := kc.Auth.Signer(r); !ok {
			missing = append(missing, "record_auth.keys."+string(r))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s needs %s (cordon keys generate; docs/security.md)", what, strings.Join(missing, ", "))
	}
	return nil
}

// devRecordAuth is the dev system's record keys, one file per role in
// the data directory (0600), made on first use and kept: the dev broker's
// records stay verifiable across restarts.
func devRecordAuth(dir string) (recordauth.Config, error) {
	var c recordauth.Config
	for _, r := range recordauth.Roles {
		path := filepath.Join(dir, "record-key-"+string(r))
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return c, err
		}
		priv := strings.TrimSpace(string(b))
		s, perr := recordauth.NewSigner(r, priv)
		if err != nil || perr != nil {
			if priv, _, err = recordauth.GenerateKey(); err != nil {
				return c, err
			}
			if err := os.WriteFile(path, []byte(priv+"\n"), 0o600); err != nil {
				return c, err
			}
			if s, err = recordauth.NewSigner(r, priv); err != nil {
				return c, err
			}
		}
		switch r {
		case recordauth.API:
			c.Keys.API, c.Trust.API = iconfig.SecretValue(priv), []string{s.Public()}
		case recordauth.Credit:
			c.Keys.Credit, c.Trust.Credit = iconfig.SecretValue(priv), []string{s.Public()}
		case recordauth.Intel:
			c.Keys.Intel, c.Trust.Intel = iconfig.SecretValue(priv), []string{s.Public()}
		case recordauth.Gate:
			c.Keys.Gate, c.Trust.Gate = iconfig.SecretValue(priv), []string{s.Public()}
		case recordauth.Vault:
			c.Keys.Signer, c.Trust.Signer = iconfig.SecretValue(priv), []string{s.Public()}
		case recordauth.Detect:
			c.Keys.Detect, c.Trust.Detect = iconfig.SecretValue(priv), []string{s.Public()}
		}
	}
	return c, nil
}

// refusals reports the records readers refused (forged, unsigned, or
// signed by an untrusted key): each is logged and counted, and raises a
// critical alert, at most one per topic every alertEvery (the counter
// keeps the rest).
type refusals struct {
	log     *slog.Logger
	counter *prometheus.CounterVec
	alerter atomic.Pointer[kafka.Producer]

	mu   sync.Mutex
	last map[string]time.Time
}

const alertEvery = time.Minute

func newRefusals(reg prometheus.Registerer, log *slog.Logger) *refusals {
	r := &refusals{log: log, last: map[string]time.Time{},
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_kafka_records_refused_total",
			Help: "Records of signed topics refused by a reader (unsigned, malformed, untrusted key, bad signature), by topic and reason."},
			[]string{"topic", "reason"})}
	reg.MustRegister(r.counter)
	return r
}

func reason(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{{recordauth.ErrUnsigned, "unsigned"}, {recordauth.ErrMalformed, "malformed"}, {recordauth.ErrWrongRole, "wrong_role"},
		{recordauth.ErrUnknown, "untrusted_key"}, {recordauth.ErrBad, "bad_signature"}, {recordauth.ErrNoTrust, "no_trusted_key"},
		{recordauth.ErrReplayed, "replayed"}} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "other"
}

// report is kafka.Config.Refused.
func (r *refusals) report(rf kafka.Refusal) {
	why := reason(rf.Err)
	r.counter.WithLabelValues(rf.Topic, why).Inc()
	r.log.Error("refused a Kafka record that is not signed by a trusted key: it changes nothing", "topic", rf.Topic,
		"partition", rf.Partition, "offset", rf.Offset, "key", truncate(string(rf.Key), 120), "role", rf.Role, "err", rf.Err)
	p := r.alerter.Load()
	if p == nil {
		return
	}
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last[rf.Topic]) < alertEvery {
		r.mu.Unlock()
		return
	}
	r.last[rf.Topic] = now
	r.mu.Unlock()
	a := chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("record_refused/%s/%d/%d", rf.Topic, rf.Partition, rf.Offset),
		Type: "record_refused", Severity: "critical", Time: now.UTC(),
		Message: fmt.Sprintf("a record on %s is not signed by a trusted %s key (%s): someone who is not that role wrote to the topic; it was refused (cordon_kafka_records_refused_total counts every one)",
			rf.Topic, rf.Role, why),
		Details: map[string]string{"topic": rf.Topic, "partition": fmt.Sprint(rf.Partition), "offset": fmt.Sprint(rf.Offset),
			"key": truncate(string(rf.Key), 200), "role": string(rf.Role), "reason": rf.Err.Error()}}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Alert(ctx, a); err != nil {
			r.log.Warn("could not write the record_refused alert", "err", err)
			r.mu.Lock()
			delete(r.last, rf.Topic) // the next refusal tries again
			r.mu.Unlock()
		}
	}()
}
