// Command cordon is the chain-watching security gateway. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

var version = "dev"

const usage = `cordon — chain-watching security gateway

Usage:
  cordon dev     [--data-dir DIR] ...   run the whole system on embedded defaults
  cordon run     --config FILE          run against your own nodes and Kafka
  cordon export  --chain eth --from N --to M [--rpc URL] [--format jsonl|csv] [--out FILE]
  cordon trace   --chain eth|btc --address A [--hops N] [--backward] [--since T] [--until T]
                 [--min-amount X] [--asset native|TOKEN] [--sinks FILE] [--format table|json|dot|html]
  cordon reconcile --chain eth|btc [--height H] [--blocks N] [--sample N] [--format table|json]
  cordon intel   import --format ofac|csv PATH | check --chain C ADDRESS... | stats
  cordon addresses import FILE          register deposit addresses and wallets (CSV or JSON lines)
  cordon deposits list|release|reject   held deposits, and operators' decisions on them
  cordon withdrawals list|show|approve|reject   the withdrawal gate's withdrawals; approvals signed with your key
  cordon breaker trip|list|reset        the circuit breaker (a reset needs a quorum of approvers)
  cordon addressbook list|add|approve   whitelisted destinations (a quorum, then a time lock)
  cordon approver keygen --name N --out FILE   an approver's Ed25519 key file
  cordon policy  hash|default|approve|check    the withdrawal policy (docs/gate/policy.md)
  cordon audit   verify --trust KEY...  verify the gate's audit log (docs/gate/audit.md)
  cordon incident list|open|note|close|timeline|seal|verify   incidents, their timelines and evidence bundles (docs/detect.md)
  cordon signer  run|check --config FILE   the second risk layer and its signer plugins (docs/signing.md)
  cordon share   publish --chain C --category K [--urgent] ADDRESS... | revoke | partners | keygen
                 partner sharing: our listings to the alliance (docs/sharing/README.md)
  cordon topics  [--script|--acls]      the Kafka topics cordon uses (--script: deploy/kafka/topics.sh, --acls: deploy/kafka/acls.sh)
  cordon keys    generate [--role R]    Ed25519 keys that sign the records carrying authority (docs/security.md)
  cordon config  check --config FILE [--strict]   validate a configuration and list its insecure settings
  cordon version

Run "cordon COMMAND -h" for a command's flags.
`

// defaultGOGC is cordon's garbage collector target when GOGC is not set:
// the watcher's live heap is small (about 10 MiB) and it allocates per
// block, so the default of 100 spends a tenth of its CPU collecting.
// BENCHMARKS.md measures the backfill with the same setting.
const defaultGOGC = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "cordon:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "dev":
		return cmdDev(ctx, args[1:])
	case "run":
		return cmdRun(ctx, args[1:])
	case "export":
		return cmdExport(ctx, args[1:])
	case "trace":
		return cmdTrace(ctx, args[1:])
	case "reconcile":
		return cmdReconcile(ctx, args[1:])
	case "intel":
		return cmdIntel(ctx, args[1:])
	case "share":
		return cmdShare(ctx, args[1:])
	case "addresses":
		return cmdAddresses(ctx, args[1:])
	case "deposits":
		return cmdDeposits(ctx, args[1:])
	case "topics":
		return cmdTopics(args[1:])
	case "keys":
		return cmdKeys(args[1:])
	case "withdrawals":
		return cmdWithdrawals(ctx, args[1:])
	case "breaker":
		return cmdBreaker(ctx, args[1:])
	case "approver":
		return cmdApprover(args[1:])
	case "addressbook":
		return cmdAddressBook(ctx, args[1:])
	case "policy":
		return policyCmd(args[1:])
	case "audit":
		return auditCmd(args[1:])
	case "incident":
		return cmdIncident(ctx, args[1:])
	case "signer":
		return signerCmd(ctx, args[1:])
	case "config":
		return cmdConfig(args[1:], os.Stdout)
	case "version", "--version":
		fmt.Println("cordon", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
