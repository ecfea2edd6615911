package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordonhq/cordon/credit"
)

const depositsUsage = `usage:
  cordon deposits list [--status held] [--account A] [--format table|json] [--config F | --brokers B]
  cordon deposits release|reject DEPOSIT_ID --content C --reason "why" [--id DECISION_ID] [--api URL]
      (C is the deposit's content as deposits list shows it: the decision applies to what you saw,
      and is refused if the deposit changed since; the operator's token comes from
      $CORDON_OPERATOR_TOKEN, or endpoints.json in cordon dev)`

// cmdDeposits lists deposits and lets an operator decide on held ones.
func cmdDeposits(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("deposits: " + depositsUsage)
	}
	switch args[0] {
	case "list":
		return cmdDepositsList(ctx, args[1:], os.Stdout)
	case "release", "reject":
		return cmdDepositsDecide(ctx, args[0], args[1:])
	}
	return fmt.Errorf("deposits: unknown subcommand %q\n%s", args[0], depositsUsage)
}

func cmdDepositsList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("deposits list", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	status := fs.String("status", "", "only deposits whose current status is this (held, pending, credited, …)")
	account := fs.String("account", "", "only this account's deposits")
	format := fs.String("format", "table", "table or json (one event per line)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("deposits list: --format %q: want table or json", *format)
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("deposits list: %w", err)
	}
	latest, err := credit.Latest(ctx, kc)
	if err != nil {
		return fmt.Errorf("deposits list: %w", err)
	}
	evs := make([]credit.DepositEvent, 0, len(latest))
	for _, ev := range latest {
		if (*status == "" || ev.Status == *status) && (*account == "" || ev.Account == *account) {
			evs = append(evs, ev)
		}
	}
	slices.SortFunc(evs, func(a, b credit.DepositEvent) int {
		if a.BlockNumber != b.BlockNumber {
			return int(a.BlockNumber) - int(b.BlockNumber)
		}
		return strings.Compare(a.ID, b.ID)
	})
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		for i := range evs {
			if err := enc.Encode(&evs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STATUS\tDEPOSIT\tACCOUNT\tASSET\tAMOUNT\tCONF\tCONTENT\tREASONS")
	for _, ev := range evs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", ev.Status, ev.ID, ev.Account, ev.Asset, ev.Amount, ev.Confirmations, ev.Required,
			ev.Content, strings.Join(ev.Reasons, "; "))
	}
	return w.Flush()
}

func cmdDepositsDecide(ctx context.Context, action string, args []string) error {
	fs := flag.NewFlagSet("deposits "+action, flag.ContinueOnError)
	reason := fs.String("reason", "", "why (required; kept with the deposit)")
	content := fs.String("content", "", "the deposit's content as deposits list showed it (required: the decision applies to what you saw)")
	id := fs.String("id", "", "decision id (a retry with the same id is the same decision; made up when empty)")
	api := fs.String("api", "", "the API's URL (default: the dev system's)")
	dataDir := fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "dev data directory whose endpoints.json is used otherwise")
	// Flags may follow the deposit id.
	var dep string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dep, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if dep == "" && fs.NArg() == 1 {
		dep = fs.Arg(0)
	}
	if dep == "" {
		return errors.New("deposits " + action + ": give the deposit id\n" + depositsUsage)
	}
	if err := credit.ValidDepositID(dep); err != nil {
		return fmt.Errorf("deposits %s: %w", action, err)
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("deposits %s: --reason is required", action)
	}
	if *content == "" {
		return fmt.Errorf("deposits %s: --content is required: look at the deposit first (cordon deposits list --status held shows its CONTENT); the decision applies only to that content", action)
	}
	token := os.Getenv("CORDON_OPERATOR_TOKEN")
	if *api == "" || token == "" {
		ep, err := readEndpoints(*dataDir)
		if err != nil {
			return fmt.Errorf("deposits %s: no --api and $CORDON_OPERATOR_TOKEN given, and %w", action, err)
		}
		if ep.API == nil {
			return fmt.Errorf("deposits %s: the dev system has no API", action)
		}
		if *api == "" {
			*api = ep.API.URL
		}
		if token == "" {
			token = ep.API.OperatorToken
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The decision names the content the operator is shown here: if the
	// deposit changes before it is written, the API refuses it (409).
	ev, err := fetchDeposit(rctx, *api, token, dep)
	if err != nil {
		return fmt.Errorf("deposits %s: %w", action, err)
	}
	if ev.Content != *content {
		return fmt.Errorf("deposits %s: %s changed since you saw it (content %s, now %s): look again (reasons now: %s)", action, dep, *content,
			ev.Content, strings.Join(ev.Reasons, "; "))
	}
	fmt.Printf("deciding on %s (%s): account %s, %s %s to %s in block %d; reasons: %s\n", ev.ID, ev.Status, ev.Account,
		ev.Amount, ev.Asset, ev.Address, ev.BlockNumber, strings.Join(ev.Reasons, "; "))
	body, _ := json.Marshal(credit.DecisionRequest{ID: *id, Deposit: dep, Action: action, Reason: *reason, Content: *content})
	// #nosec G704 -- the operator names the API to call (--api or the dev endpoints.json)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimRight(*api, "/")+"/v1/decisions", strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("deposits %s: %w", action, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- see above
	if err != nil {
		return fmt.Errorf("deposits %s: %w", action, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("deposits %s: the API answered %s: %s", action, resp.Status, strings.TrimSpace(string(out)))
	}
	var r credit.DecisionResponse
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("deposits %s: unreadable answer: %w", action, err)
	}
	fmt.Printf("decision %s recorded: %s %s by %s; its outcome is the deposit's next event (or a deposit_decision_refused alert)\n",
		r.Decision.ID, r.Decision.Action, r.Decision.Deposit, r.Decision.Operator)
	return nil
}

// fetchDeposit reads one open deposit from the API (GET /v1/deposits?id=).
func fetchDeposit(ctx context.Context, api, token, id string) (credit.DepositEvent, error) {
	// #nosec G704 -- the operator names the API to call (--api or the dev endpoints.json)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/v1/deposits?id="+url.QueryEscape(id), nil)
	if err != nil {
		return credit.DepositEvent{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- see above
	if err != nil {
		return credit.DepositEvent{}, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return credit.DepositEvent{}, fmt.Errorf("reading deposit %s: the API answered %s: %s", id, resp.Status, strings.TrimSpace(string(out)))
	}
	var r credit.DepositsResponse
	if err := json.Unmarshal(out, &r); err != nil || len(r.Deposits) != 1 {
		return credit.DepositEvent{}, fmt.Errorf("reading deposit %s: unreadable answer", id)
	}
	return r.Deposits[0], nil
}
