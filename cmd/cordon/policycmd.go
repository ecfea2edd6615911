package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
)

const policyUsage = `usage: cordon policy hash FILE
       cordon policy default
       cordon policy approve --key KEYFILE [--reason TEXT] FILE >> FILE.approvals
       cordon policy check --approvers FILE [--approvals FILE --quorum N --groups G,...] FILE

The withdrawal policy (docs/gate/policy.md). hash prints the SHA-256 of a
policy file: what its approvers sign and intents carry. default prints the
shipped default policy. approve signs an approval of a policy file with an
approver's key file (cordon approver keygen) and prints it as one JSON
line: append it to the file's approval record. check compiles a policy
file against the approvers (a YAML list, as gate.approvers) and, given an
approval record, verifies it meets the policy quorum.
`

func policyCmd(args []string) error {
	return runPolicy(args, os.Stdout, os.Stderr)
}

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return errors.New("policy: want hash, default, approve or check")
	}
	switch args[0] {
	case "hash":
		if len(args) != 2 {
			return errors.New("policy hash: want one policy file")
		}
		src, err := os.ReadFile(args[1]) // #nosec G703 -- the operator names the policy file
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, policy.Hash(src))
		return nil
	case "default":
		_, err := stdout.Write(policy.DefaultYAML())
		return err
	case "approve":
		return policyApprove(args[1:], stdout, stderr)
	case "check":
		return policyCheck(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return nil
	}
	fmt.Fprint(stderr, policyUsage)
	return fmt.Errorf("policy: unknown subcommand %q", args[0])
}

func policyApprove(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy approve", flag.ContinueOnError)
	keyFile := fs.String("key", "", "the approver's key file (cordon approver keygen)")
	reason := fs.String("reason", "", "why you approve (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" || fs.NArg() != 1 {
		return errors.New("policy approve: want --key KEYFILE and one policy file")
	}
	raw, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	var kf intent.KeyFile
	if err := json.Unmarshal(raw, &kf); err != nil {
		return fmt.Errorf("key file %s: %w", *keyFile, err)
	}
	key, err := kf.Key()
	if err != nil {
		return err
	}
	src, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	a, err := policy.ApprovePolicy(src, kf.Approver, *reason, key, time.Now())
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s approves policy %s (%s)\n", kf.Approver, a.Intent, fs.Arg(0))
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func policyCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	approversFile := fs.String("approvers", "", "the approvers: a YAML list, as gate.approvers")
	approvals := fs.String("approvals", "", "the policy file's approval record")
	quorum := fs.Int("quorum", 0, "with --approvals: how many approvers must have approved")
	groups := fs.String("groups", "", "with --approvals: the groups whose approvers count, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *approversFile == "" || fs.NArg() != 1 {
		return errors.New("policy check: want --approvers FILE and one policy file")
	}
	raw, err := os.ReadFile(*approversFile)
	if err != nil {
		return err
	}
	var list []intent.Approver
	if err := yaml.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("approvers %s: %w", *approversFile, err)
	}
	as, err := intent.NewApprovers("approvers", list)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	p, err := policy.Parse(src, as)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "policy %s: %d rules\n", p.Hash(), len(p.Rules()))
	for _, r := range p.Rules() {
		when := r.When
		if strings.TrimSpace(when) == "" {
			when = "always"
		}
		fmt.Fprintf(stdout, "  %-24s %-8s %s\n", r.Name, r.Action, when)
	}
	if *approvals == "" {
		return nil
	}
	rec, err := os.ReadFile(*approvals)
	if err != nil {
		return err
	}
	q := policy.Quorum{N: *quorum}
	if *groups != "" {
		q.Groups = strings.Split(*groups, ",")
	}
	by, err := policy.VerifyRecord(src, rec, q, as)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "approved by %s\n", strings.Join(by, ", "))
	return nil
}
