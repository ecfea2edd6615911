package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/signer/audit"
)

const auditUsage = `cordon audit: the withdrawal gate's audit log (docs/gate/audit.md)

  cordon audit verify [--config FILE | --brokers B | --data-dir DIR] [--topic T]
                      [--trust KEY...] [--expect SEQ:HASH] [--json]

verify reads the whole log (cordon.audit) and checks its hash chain and
signed checkpoints; it names the first record altered, removed or
reordered and exits non-zero. --trust takes the gate leaders' public keys
(base64, repeatable or comma separated; also $CORDON_AUDIT_TRUST; by
default --config's gate.audit.trust or record_auth.trust.gate, or the
dev system's gate key);
--expect is a head an earlier verify printed, which the log must still
hold (so a tail cut off past it is caught).
`

// auditCmd runs cordon audit.
func auditCmd(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runAudit(ctx, args, os.Stdout)
}

func runAudit(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, auditUsage)
		return errors.New("audit: no subcommand given")
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, auditUsage)
	return fmt.Errorf("audit: unknown subcommand %q", args[0])
}

// splitList is the non-empty items of comma-separated flag values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func runAuditVerify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	topic := fs.String("topic", "", "the audit topic (default: kafka.topics.audit, cordon.audit)")
	var trust, expect listFlag
	fs.Var(&trust, "trust", "a gate leader's public key (base64 Ed25519) whose checkpoints are trusted; repeatable")
	fs.Var(&expect, "expect", "SEQ:HASH of a record the log must hold (a head an earlier verify printed); repeatable")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit verify: unexpected arguments %q", fs.Args())
	}
	if len(trust) == 0 {
		trust = listFlag{os.Getenv("CORDON_AUDIT_TRUST")}
	}
	if len(splitList(trust)) == 0 {
		// The keys the configuration trusts (gate.audit.trust, else
		// record_auth.trust.gate), or the dev system's gate key.
		switch {
		case *kf.config != "":
			cfg, err := config.Load(*kf.config, os.Environ())
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			trust = append(listFlag{}, cfg.Gate.Audit.Trust...)
			if len(trust) == 0 {
				trust = append(trust, cfg.RecordAuth.Trust.Gate...)
			}
		case *kf.brokers == "":
			if ep, err := readEndpoints(*kf.dataDir); err == nil && ep.RecordKeys["gate"] != "" {
				trust = listFlag{ep.RecordKeys["gate"]}
			}
		}
	}
	trust, expect = splitList(trust), splitList(expect)
	if len(trust) == 0 {
		return errors.New("audit verify: no --trust key given (the gate leaders' public keys, base64; or $CORDON_AUDIT_TRUST): without one no checkpoint verifies")
	}
	keys, err := audit.NewKeys(trust...)
	if err != nil {
		return fmt.Errorf("audit verify: --trust: %w", err)
	}
	var anchors []audit.Anchor
	for _, e := range expect {
		seq, hash, ok := strings.Cut(e, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || n == 0 || len(hash) != 64 {
			return fmt.Errorf("audit verify: --expect %q: want SEQ:HASH (a head verify printed)", e)
		}
		anchors = append(anchors, audit.Anchor{Seq: n, Hash: hash})
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if *topic != "" {
		kc.Topics.Audit = *topic
	}
	rep, verr := audit.VerifyTopic(ctx, kc, keys, anchors...)
	if verr != nil && !errors.Is(verr, audit.ErrTampered) {
		return fmt.Errorf("audit verify: %w", verr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, rep.Text())
	}
	if verr != nil {
		return fmt.Errorf("audit verify: %w", verr)
	}
	return nil
}
