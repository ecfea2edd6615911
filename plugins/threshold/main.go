// Command threshold is cordon's 2-of-3 threshold ECDSA signer plugin
// (EXPERIMENTAL; see README.md): each process serves one party's share
// of a group key, and two of them sign together in a session the host
// routes (signer/cosign).
//
//	threshold preparams --out FILE
//	    generate one party's pre-parameters (Paillier key, safe primes;
//	    minutes of CPU). Production generates a fresh set per party.
//	threshold keygen --preparams DIR --out DIR --key-id ID [--ids p0,p1,p2]
//	    run the key ceremony from DIR/preparams-{0,1,2}.json and write
//	    DIR/share-<id>.json (0600) for each party
//	threshold --share FILE [--networks regtest,simnet,...] [--session-timeout 60s]
//	    serve one share (started by cordon's plugin host)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/plugins/threshold/party"
)

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "keygen":
		err = runKeygen(args[1:])
	case len(args) > 0 && args[0] == "preparams":
		err = runPreParams(args[1:])
	default:
		err = serve(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "threshold:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runKeygen(args []string) error {
	fs := flag.NewFlagSet("threshold keygen", flag.ExitOnError)
	pre := fs.String("preparams", "", "directory of preparams-0.json, preparams-1.json, preparams-2.json")
	out := fs.String("out", "", "directory the share files are written to")
	keyID := fs.String("key-id", "", "the group key's id")
	ids := fs.String("ids", strings.Join(party.DefaultIDs, ","), "the three party ids")
	_ = fs.Parse(args)
	if *pre == "" || *out == "" || *keyID == "" {
		return fmt.Errorf("keygen: --preparams DIR, --out DIR and --key-id ID are required")
	}
	pps, err := party.LoadPreParamsDir(*pre)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	shares, err := party.Keygen(ctx, pps, splitList(*ids))
	if err != nil {
		return err
	}
	paths, err := party.WriteShares(*out, *keyID, shares[:])
	if err != nil {
		return err
	}
	fmt.Printf("group key %x (key id %s)\n", shares[0].GroupKey, *keyID)
	for _, p := range paths {
		fmt.Println("wrote", p)
	}
	return nil
}

func runPreParams(args []string) error {
	fs := flag.NewFlagSet("threshold preparams", flag.ExitOnError)
	out := fs.String("out", "", "the file the pre-parameters are written to (0600)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	_ = fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("preparams: --out FILE is required")
	}
	pp, err := keygen.GeneratePreParams(*timeout)
	if err != nil {
		return fmt.Errorf("preparams: %w", err)
	}
	if err := party.WritePreParams(*out, pp); err != nil {
		return fmt.Errorf("preparams: %w", err)
	}
	fmt.Println("wrote", *out)
	return nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("threshold", flag.ExitOnError)
	path := fs.String("share", "", "the share file")
	networks := fs.String("networks", "", "comma-separated networks this share signs for (empty: any)")
	timeout := fs.Duration("session-timeout", party.DefaultSessionTimeout, "bound on one signing session")
	_ = fs.Parse(args)
	if *path == "" {
		return fmt.Errorf("--share FILE is required")
	}
	s, err := party.Load(*path)
	if err != nil {
		return err
	}
	// stderr lines are forwarded to the host's log by go-plugin.
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("plugin", party.PluginName, "party", s.ID, "key_id", s.KeyID)
	sdk.Serve(party.NewPlugin(s, splitList(*networks), *timeout, log))
	return nil
}
