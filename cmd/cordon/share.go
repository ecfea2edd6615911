package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/uuid"
	"github.com/cordonhq/cordon/sharing/alliance"
)

// cmdShare is cordon share: publish, revoke, partners, keygen.
func cmdShare(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: cordon share publish|revoke|partners|keygen [flags]")
	}
	fs := flag.NewFlagSet("share "+args[0], flag.ContinueOnError)
	client := gateFlags(fs)
	switch args[0] {
	case "publish":
		var l alliance.Listing
		chainName := fs.String("chain", "", "eth or btc (required)")
		fs.StringVar(&l.Network, "network", "mainnet", "the chain's network")
		fs.StringVar(&l.Category, "category", "", "hack, sanctions, phishing, mixer, scam, ransomware, ... (required)")
		fs.IntVar(&l.Confidence, "confidence", 90, "0-100")
		tlp := fs.String("tlp", "amber", "clear, green, amber, amber+strict or red (red never leaves this exchange)")
		fs.StringVar(&l.Description, "description", "", "what happened")
		validFor := fs.Duration("valid-for", 0, "how long the listing holds (0: until revoked)")
		fs.BoolVar(&l.Urgent, "urgent", false, "an active theft: post to every entitled partner at once")
		fs.BoolVar(&l.Private, "private", false, "addresses tied to customers: publish their keyed hashes (the privacy mode, sharing.alliance_key)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *chainName == "" || l.Category == "" || fs.NArg() == 0 {
			return errors.New("usage: cordon share publish --chain eth|btc --category CATEGORY [--urgent] [--private] [--tlp amber] ADDRESS, one or more")
		}
		t, err := intel.ParseTLP(*tlp)
		if err != nil {
			return fmt.Errorf("--tlp: %w", err)
		}
		l.Chain, l.TLP, l.Values = chain.Chain(*chainName), t, fs.Args()
		if *validFor > 0 {
			l.ValidUntil = time.Now().Add(*validFor).UTC().Truncate(time.Millisecond)
		}
		return shareCall(ctx, client, alliance.ListingsEndpoint, l)
	case "revoke":
		var rv alliance.Revocation
		chainName := fs.String("chain", "", "eth or btc, with ADDRESS arguments")
		fs.StringVar(&rv.Network, "network", "mainnet", "the chain's network")
		fs.BoolVar(&rv.Private, "private", false, "revoke the private (hashed) listings of the addresses")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("usage: cordon share revoke (--chain eth|btc [--private] ADDRESS | INDICATOR-ID), one or more")
		}
		if *chainName != "" {
			rv.Chain, rv.Values = chain.Chain(*chainName), fs.Args()
		} else {
			rv.IDs, rv.Network = fs.Args(), ""
		}
		return shareCall(ctx, client, alliance.RevocationsEndpoint, rv)
	case "partners":
		asJSON := fs.Bool("json", false, "print the answer as JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var a alliance.PartnersAnswer
		if err := c.call(ctx, "GET", alliance.PartnersEndpoint, nil, &a); err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(a)
		}
		fmt.Printf("sharing as %s\n", a.Self)
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTNER\tLAST SYNC\tLAG\tRECEIVED\tDUPLICATES\tREFUSED\tPUSHED\tPUSH FAILURES\tLAST ERROR")
		for _, p := range a.Partners {
			last := "never"
			if !p.LastSync.IsZero() {
				last = time.Since(p.LastSync).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.3fs\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Partner, last, p.Lag, p.Received, p.Duplicate, p.Refused, p.Pushed, p.PushFail,
				truncate(p.LastError, 60))
		}
		return tw.Flush()
	case "keygen":
		name := fs.String("name", "", "our name among the partners (sharing.name)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		u, err := uuid.V4()
		if err != nil {
			return err
		}
		id := "identity--" + u
		fmt.Printf("# ours (keep signing_key secret: put it in a file and write file:PATH)\nsharing:\n  name: %s\n  identity: %s\n  signing_key: %s\n",
			*name, id, base64.StdEncoding.EncodeToString(priv.Seed()))
		fmt.Printf("# for our partners' sharing.partners\n- name: %s\n  identity: %s\n  signing_key: %s\n", *name, id, base64.StdEncoding.EncodeToString(pub))
		return nil
	}
	return fmt.Errorf("cordon share %s: unknown; want publish, revoke, partners or keygen", args[0])
}

func shareCall(ctx context.Context, client func() (gateClient, error), path string, body any) error {
	c, err := client()
	if err != nil {
		return err
	}
	var a alliance.ListingAnswer
	if err := c.call(ctx, "POST", path, body, &a); err != nil {
		return err
	}
	for _, p := range a.Published {
		what := "published"
		if p.Revoked {
			what = "revoked"
		}
		urgent := ""
		if p.Urgent {
			urgent = ", urgent"
		}
		fmt.Printf("%s %s %s (TLP:%s%s, version %s)\n", what, p.Value, p.ID, strings.ToUpper(string(p.TLP)), urgent, p.Version.Format(time.RFC3339Nano))
	}
	if len(a.Published) == 0 {
		fmt.Println("nothing changed")
	}
	return nil
}
