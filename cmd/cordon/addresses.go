package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

// cmdAddresses registers the exchange's addresses from a file.
func cmdAddresses(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New("addresses: usage: cordon addresses import [--chain C] [--config F | --brokers B] FILE (CSV with a header, or JSON lines)")
	}
	fs := flag.NewFlagSet("addresses import", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	chainName := fs.String("chain", "", "chain of rows that name none (eth or btc)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("addresses import: give one file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("addresses import: %w", err)
	}
	defer f.Close()
	entries, bad, err := registry.ParseEntries(f, chain.Chain(*chainName))
	for _, b := range bad {
		fmt.Fprintf(os.Stderr, "%s: line %d: %s\n", fs.Arg(0), b.Row, b.Error)
	}
	if err != nil {
		return fmt.Errorf("addresses import %s: %w (the %d valid rows before it were not imported)", fs.Arg(0), err, len(entries))
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("addresses import: %w", err)
	}
	prod, err := kafka.New(kc, nil, nil)
	if err != nil {
		return err
	}
	defer func() { _ = prod.Close() }()
	if err := prod.EnsureTopics(ctx); err != nil {
		return err
	}
	for len(entries) > 0 {
		n := min(len(entries), 10_000)
		if err := registry.Publish(ctx, prod, entries[:n]); err != nil {
			return fmt.Errorf("addresses import: %w", err)
		}
		entries = entries[n:]
	}
	fmt.Printf("registered the valid rows of %s; %d rows rejected\n", fs.Arg(0), len(bad))
	if len(bad) > 0 {
		return fmt.Errorf("addresses import: %d rows rejected (listed above)", len(bad))
	}
	return nil
}
