package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
)

const withdrawalsUsage = `usage:
  cordon withdrawals list [--status S] [--account A] [--chain C] [--limit N]
  cordon withdrawals show ID
  cordon withdrawals approve|reject ID --key FILE [--reason TEXT]
  cordon breaker trip --scope all|chain|asset [--chain C] [--network N] [--asset A] --reason TEXT
  cordon breaker list
  cordon breaker reset ID --key FILE
  cordon addressbook list [--account A]
  cordon addressbook add --account A|'*exchange*' --chain C [--network N] --address ADDR [--label L]
  cordon addressbook approve ID --key FILE
  cordon addressbook remove ID --reason R
  cordon approver keygen --name NAME --out FILE
each takes --api URL and the token in $CORDON_TOKEN (default: the dev system's endpoints.json and its operator token, --data-dir)`

// gateClient calls the gate's API.
type gateClient struct {
	api, token string
}

func gateFlags(fs *flag.FlagSet) func() (gateClient, error) {
	api := fs.String("api", "", "the API's URL (default: the dev system's)")
	dataDir := fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "dev data directory whose endpoints.json is used otherwise")
	return func() (gateClient, error) {
		c := gateClient{api: *api, token: os.Getenv("CORDON_TOKEN")}
		if c.api == "" || c.token == "" {
			ep, err := readEndpoints(*dataDir)
			if err != nil {
				return c, fmt.Errorf("no --api and $CORDON_TOKEN given, and %w", err)
			}
			if ep.API == nil {
				return c, errors.New("the dev system has no API")
			}
			if c.api == "" {
				c.api = ep.API.URL
			}
			if c.token == "" {
				c.token = ep.API.OperatorToken
			}
		}
		c.api = strings.TrimRight(c.api, "/")
		return c, nil
	}
}

// call sends body (nil: none) and decodes the answer into out, or
// returns the API's error.
func (c gateClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// #nosec G704 -- the operator names the API to call (--api or the dev endpoints.json)
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- see above
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Code string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s (%s)", method, path, e.Error, e.Code)}
		}
		return apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))}
	}
	return json.Unmarshal(b, out)
}

// apiError is an answer of the API outside 2xx.
type apiError struct {
	status int
	msg    string
}

func (e apiError) Error() string { return e.msg }

// refusal reports whether err is the API refusing the request itself (a
// 4xx other than 408 and 429): sending it again would be refused again.
func refusal(err error) bool {
	var e apiError
	return errors.As(err, &e) && e.status/100 == 4 && e.status != http.StatusRequestTimeout && e.status != http.StatusTooManyRequests
}

// cmdWithdrawals is cordon withdrawals.
func cmdWithdrawals(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(withdrawalsUsage)
	}
	fs := flag.NewFlagSet("withdrawals "+args[0], flag.ContinueOnError)
	client := gateFlags(fs)
	id, rest := splitID(args[1:])
	switch args[0] {
	case "list":
		status := fs.String("status", "", "only withdrawals of this status")
		account := fs.String("account", "", "only this account's")
		chainName := fs.String("chain", "", "only this chain's")
		limit := fs.Int("limit", 100, "at most this many, newest first")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		q := url.Values{"limit": {fmt.Sprint(*limit)}}
		for k, v := range map[string]string{"status": *status, "account": *account, "chain": *chainName} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var out struct{ Withdrawals []gate.Withdrawal }
		if err := c.call(ctx, "GET", gate.WithdrawalsEndpoint+"?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tRULE\tACCOUNT\tCHAIN\tAMOUNT\tASSET\tUSD\tDESTINATION\tAPPROVALS\tREASON")
		for _, w := range out.Withdrawals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%d\t%s\n", w.Intent.ID, w.Status, w.Decision.Rule, w.Intent.Account,
				w.Intent.Chain, w.Intent.Network, w.Intent.Amount, w.Intent.Asset, w.USD, w.Intent.Destination, len(w.Approvals), w.Reason)
		}
		return tw.Flush()
	case "show", "approve", "reject":
		key := fs.String("key", "", "the approver's key file (cordon approver keygen)")
		reason := fs.String("reason", "", "why (required to reject)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if id == "" && fs.NArg() == 1 {
			id = fs.Arg(0)
		}
		if id == "" {
			return errors.New("give the withdrawal id\n" + withdrawalsUsage)
		}
		c, err := client()
		if err != nil {
			return err
		}
		var w gate.Withdrawal
		if err := c.call(ctx, "GET", gate.WithdrawalsEndpoint+"/"+url.PathEscape(id), nil, &w); err != nil {
			return err
		}
		// The hash is computed here, from the intent shown, never taken
		// from the server: what is signed is what the approver saw.
		h, err := w.Intent.Hash()
		if err != nil {
			return err
		}
		showWithdrawal(&w, h)
		if args[0] == "show" {
			return nil
		}
		if h != w.Hash {
			return fmt.Errorf("the gate says intent %s, and the intent it shows hashes to %s: refusing to sign (a tampered server or front end?)", w.Hash, h)
		}
		kf, priv, err := readKeyFile(*key)
		if err != nil {
			return err
		}
		a := intent.Approval{Withdrawal: w.Intent.ID, Intent: h, Approver: kf.Approver, Decision: intent.Approve, Reason: *reason, Signed: time.Now()}
		if args[0] == "reject" {
			a.Decision = intent.Reject
		}
		a.Sign(priv)
		var after gate.Withdrawal
		if err := c.call(ctx, "POST", gate.WithdrawalsEndpoint+"/"+url.PathEscape(id)+"/approvals", a, &after); err != nil {
			return err
		}
		fmt.Printf("%s %sd %s: it is now %s (%s)\n", kf.Approver, a.Decision, id, after.Status, after.Reason)
		return nil
	}
	return fmt.Errorf("withdrawals %s: unknown\n%s", args[0], withdrawalsUsage)
}

func showWithdrawal(w *gate.Withdrawal, hash string) {
	in := w.Intent
	fmt.Printf("withdrawal   %s (the exchange's %s, requested by %s at %s)\n", in.ID, in.Request, in.Requester, in.Requested.Format(time.RFC3339))
	fmt.Printf("send         %s base units of %s on %s/%s\n", in.Amount, in.Asset, in.Chain, in.Network)
	fmt.Printf("to           %s\n", in.Destination)
	fmt.Printf("account      %s   value $%s\n", in.Account, w.USD)
	fmt.Printf("rule         %s: %s\n", in.Rule, w.Decision.Reason)
	fmt.Printf("status       %s: %s\n", w.Status, w.Reason)
	for _, f := range w.Findings {
		fmt.Printf("finding      %s: %s\n", f.Code, f.Reason)
	}
	for _, a := range w.Approvals {
		fmt.Printf("approved by  %s at %s\n", a.Approver, a.Signed.Format(time.RFC3339))
	}
	fmt.Printf("intent hash  %s\n", hash)
}

func readKeyFile(path string) (intent.KeyFile, []byte, error) {
	if path == "" {
		return intent.KeyFile{}, nil, errors.New("--key FILE is required: the approver's key file (cordon approver keygen)")
	}
	b, err := os.ReadFile(path) // #nosec G304 G703 -- the approver names their own key file
	if err != nil {
		return intent.KeyFile{}, nil, err
	}
	var kf intent.KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return kf, nil, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err := kf.Key()
	return kf, k, err
}

// cmdBreaker is cordon breaker.
func cmdBreaker(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(withdrawalsUsage)
	}
	fs := flag.NewFlagSet("breaker "+args[0], flag.ContinueOnError)
	client := gateFlags(fs)
	switch args[0] {
	case "trip":
		var q gate.TripRequest
		fs.StringVar(&q.Scope, "scope", "", "all, chain or asset")
		fs.StringVar(&q.Chain, "chain", "", "the chain (scopes chain and asset)")
		fs.StringVar(&q.Network, "network", "", "the network (default: all of the chain's)")
		fs.StringVar(&q.Asset, "asset", "", "native or a token contract (scope asset)")
		fs.StringVar(&q.Reason, "reason", "", "why (required)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var t gate.Trip
		if err := c.call(ctx, "POST", gate.BreakerEndpoint, q, &t); err != nil {
			return err
		}
		fmt.Printf("tripped %s (%s) by %s: %s; resetting it needs a quorum of approvers (cordon breaker reset %s --key FILE)\n", t.ID, t.Scope, t.By, t.Reason, t.ID)
		return nil
	case "list":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		trips, err := breakerTrips(ctx, client)
		if err != nil {
			return err
		}
		for _, t := range trips {
			fmt.Printf("%s  %s %s %s %s  by %s at %s: %s (%d reset approvals)\n", t.ID, t.Scope, t.Chain, t.Network, t.Asset, t.By,
				t.At.Format(time.RFC3339), t.Reason, len(t.Resets))
		}
		return nil
	case "reset":
		key := fs.String("key", "", "the approver's key file")
		id, err := parseWithID(fs, args[1:])
		if err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		trips, err := breakerTrips(ctx, client)
		if err != nil {
			return err
		}
		var trip *gate.Trip
		for i := range trips {
			if trips[i].ID == id {
				trip = &trips[i]
			}
		}
		if trip == nil {
			return fmt.Errorf("no trip %q in force", id)
		}
		kf, priv, err := readKeyFile(*key)
		if err != nil {
			return err
		}
		fmt.Printf("resetting %s: %s %s %s by %s: %s\n", trip.ID, trip.Scope, trip.Chain, trip.Asset, trip.By, trip.Reason)
		a := intent.Approval{Withdrawal: trip.Subject(), Intent: trip.Hash(), Approver: kf.Approver, Decision: intent.Approve, Signed: time.Now()}
		a.Sign(priv)
		var r gate.ResetAnswer
		if err := c.call(ctx, "POST", gate.BreakerEndpoint+"/"+url.PathEscape(id)+"/resets", a, &r); err != nil {
			return err
		}
		if r.Reset {
			fmt.Printf("%s is reset: held withdrawals go on\n", id)
		} else {
			fmt.Printf("%s approved resetting %s; more approvals are needed\n", kf.Approver, id)
		}
		return nil
	}
	return fmt.Errorf("breaker %s: unknown\n%s", args[0], withdrawalsUsage)
}

// breakerTrips are the trips in force (GET /v1/breaker).
func breakerTrips(ctx context.Context, client func() (gateClient, error)) ([]gate.Trip, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	var out struct{ Trips []gate.Trip }
	err = c.call(ctx, "GET", gate.BreakerEndpoint, nil, &out)
	return out.Trips, err
}

// cmdAddressBook is cordon addressbook.
func cmdAddressBook(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(withdrawalsUsage)
	}
	fs := flag.NewFlagSet("addressbook "+args[0], flag.ContinueOnError)
	client := gateFlags(fs)
	list := func(c gateClient, account string) ([]gate.BookEntry, error) {
		var out struct{ Entries []gate.BookEntry }
		err := c.call(ctx, "GET", gate.BookEndpoint+"?account="+url.QueryEscape(account), nil, &out)
		return out.Entries, err
	}
	switch args[0] {
	case "list":
		account := fs.String("account", "", "only this account's entries")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		es, err := list(c, *account)
		if err != nil {
			return err
		}
		for _, e := range es {
			state := fmt.Sprintf("awaiting approval (%d so far)", len(e.Approvals))
			switch {
			case e.Removed != nil:
				state = fmt.Sprintf("removed at %s by %s: %q", e.Removed.Format(time.RFC3339), e.RemovedBy, e.RemovedReason)
			case e.ActiveAt != nil:
				state = "active from " + e.ActiveAt.Format(time.RFC3339)
			}
			fmt.Printf("%s  %s  %s/%s %s  %q  by %s: %s\n", e.ID, e.Account, e.Chain, e.Network, e.Destination, e.Label, e.By, state)
		}
		return nil
	case "add":
		var q gate.EntryRequest
		fs.StringVar(&q.Account, "account", "", "the account, or *exchange* for the exchange's own wallets")
		fs.StringVar(&q.Chain, "chain", "", "eth or btc")
		fs.StringVar(&q.Network, "network", "", "the network (default mainnet)")
		fs.StringVar(&q.Destination, "address", "", "the destination")
		fs.StringVar(&q.Label, "label", "", "what it is")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var e gate.BookEntry
		if err := c.call(ctx, "POST", gate.BookEndpoint, q, &e); err != nil {
			return err
		}
		fmt.Printf("proposed %s: %s on %s/%s for %s; it counts once approvers approve it and its time lock passed\n", e.ID, e.Destination, e.Chain, e.Network, e.Account)
		return nil
	case "approve":
		key := fs.String("key", "", "the approver's key file")
		id, err := parseWithID(fs, args[1:])
		if err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		es, err := list(c, "")
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.ID != id {
				continue
			}
			kf, priv, err := readKeyFile(*key)
			if err != nil {
				return err
			}
			// The hash is computed here, from the entry shown.
			fmt.Printf("approving %s: %s on %s/%s for %s (%q), proposed by %s\n", e.ID, e.Destination, e.Chain, e.Network, e.Account, e.Label, e.By)
			a := intent.Approval{Withdrawal: e.Subject(), Intent: e.Hash(), Approver: kf.Approver, Decision: intent.Approve, Signed: time.Now()}
			a.Sign(priv)
			var after gate.BookEntry
			if err := c.call(ctx, "POST", gate.BookEndpoint+"/"+url.PathEscape(id)+"/approvals", a, &after); err != nil {
				return err
			}
			if after.ActiveAt != nil {
				fmt.Printf("%s has its quorum: active from %s\n", id, after.ActiveAt.Format(time.RFC3339))
			} else {
				fmt.Printf("%s approved %s; more approvals are needed\n", kf.Approver, id)
			}
			return nil
		}
		return fmt.Errorf("no address-book entry %q", id)
	case "remove":
		reason := fs.String("reason", "", "why the entry is removed (required)")
		id, err := parseWithID(fs, args[1:])
		if err != nil {
			return err
		}
		if id == "" || strings.TrimSpace(*reason) == "" {
			return errors.New("addressbook remove: want the entry's id and --reason")
		}
		c, err := client()
		if err != nil {
			return err
		}
		var e gate.BookEntry
		if err := c.call(ctx, "POST", gate.BookEndpoint+"/"+url.PathEscape(id)+"/removal", gate.RemoveRequest{Reason: *reason}, &e); err != nil {
			return err
		}
		fmt.Printf("removed %s (%s on %s/%s for %s): it no longer counts\n", e.ID, e.Destination, e.Chain, e.Network, e.Account)
		return nil
	}
	return fmt.Errorf("addressbook %s: unknown\n%s", args[0], withdrawalsUsage)
}

// cmdApprover is cordon approver keygen.
func cmdApprover(args []string) error {
	if len(args) == 0 || args[0] != "keygen" {
		return errors.New("usage: cordon approver keygen --name NAME --out FILE")
	}
	fs := flag.NewFlagSet("approver keygen", flag.ContinueOnError)
	name := fs.String("name", "", "the approver's name, as gate.approvers lists it")
	out := fs.String("out", "", "the key file to write (0600; it never leaves the approver's machine)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("approver keygen: --out FILE is required")
	}
	kf, err := intent.GenerateKey(*name)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(kf, "", "  ")                              // #nosec G117 -- the key file is the private key, written 0600 for its owner
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the approver names the file
	if err != nil {
		return fmt.Errorf("approver keygen: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("wrote %s; add to gate.approvers:\n  - {name: %s, groups: [GROUP], key: %s}\n", *out, kf.Approver, kf.Public)
	return nil
}

// splitID takes a leading ID argument (one not starting with "-") off
// args: the commands take it before their flags.
func splitID(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// parseWithID parses fs from args after a leading ID, and returns it.
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	id, rest := splitID(args)
	return id, fs.Parse(rest)
}
