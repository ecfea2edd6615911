package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

const intelUsage = `cordon intel: indicator feeds and screening

  cordon intel import --format ofac|ofac-xml|csv|stix|misp [--source NAME] [--name FEED] PATH
  cordon intel check  --chain eth|btc [--network N] ADDRESS...
  cordon intel stats  [--format table|json]

Each takes --config FILE (its kafka section) or --brokers, else the dev
system's endpoints.json (--data-dir).
`

func cmdIntel(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, intelUsage)
		return errors.New("intel: no subcommand given")
	}
	switch args[0] {
	case "import":
		return cmdIntelImport(ctx, args[1:])
	case "check":
		return cmdIntelCheck(ctx, args[1:])
	case "stats":
		return cmdIntelStats(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(intelUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, intelUsage)
	return fmt.Errorf("intel: unknown subcommand %q", args[0])
}

// kafkaFlags locate the cluster holding the indicator topic.
type kafkaFlags struct{ config, brokers, dataDir *string }

func addKafkaFlags(fs *flag.FlagSet) kafkaFlags {
	return kafkaFlags{
		config:  fs.String("config", "", "take Kafka settings from this configuration file"),
		brokers: fs.String("brokers", "", "Kafka bootstrap brokers, comma separated (default: --config's, else the dev system's)"),
		dataDir: fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "dev data directory whose endpoints.json is used otherwise"),
	}
}

// kafka resolves the flags: --config's Kafka settings, else --brokers
// with the default topics, else the dev system's endpoints.json.
func (k kafkaFlags) kafka() (kafka.Config, error) {
	var kc kafka.Config
	switch {
	case *k.config != "":
		cfg, err := config.Load(*k.config, os.Environ())
		if err != nil {
			return kc, err
		}
		kc = cfg.Kafka
	default:
		kc.Topics = kafka.DefaultTopics()
		kc.CreateTopics = true
		if *k.brokers == "" {
			ep, err := readEndpoints(*k.dataDir)
			if err != nil {
				return kc, fmt.Errorf("no --brokers given and %w", err)
			}
			*k.brokers = ep.Kafka
			// The dev system's record keys sit beside its endpoints.json.
			rc, err := devRecordAuth(*k.dataDir)
			if err != nil {
				return kc, fmt.Errorf("dev record keys: %w", err)
			}
			var p iconfig.Problems
			if kc.Auth = rc.Keyring(&p, "record_auth"); p.Err() != nil {
				return kc, p.Err()
			}
			for name, dst := range map[string]*string{"intel": &kc.Topics.Intel, "addresses": &kc.Topics.Addresses,
				"deposits": &kc.Topics.Deposits, "decisions": &kc.Topics.Decisions, "alerts": &kc.Topics.Alerts,
				"audit": &kc.Topics.Audit, "incidents": &kc.Topics.Incidents} {
				if t := ep.Topics[name]; t != "" {
					*dst = t
				}
			}
		}
	}
	if *k.brokers != "" {
		kc.Brokers = strings.Split(*k.brokers, ",")
	}
	if kc.Refused == nil {
		// A command never leaves a record out silently: what it refused is
		// named, since it may be why an answer lacks something.
		kc.Refused = func(r kafka.Refusal) {
			fmt.Fprintf(os.Stderr, "cordon: refused the record at %s/%d offset %d (key %q, needs %s's signature): %v; it is left out\n",
				r.Topic, r.Partition, r.Offset, truncate(string(r.Key), 120), r.Role, r.Err)
		}
	}
	return kc, nil
}

func (k kafkaFlags) topic(ctx context.Context) (*intel.Topic, error) {
	kc, err := k.kafka()
	if err != nil {
		return nil, err
	}
	t, err := intel.OpenTopic(kc)
	if err != nil {
		return nil, err
	}
	if err := t.Ensure(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func cmdIntelImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("intel import", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	format := fs.String("format", "", "ofac (one address per line; the currency from the file name or --currency), ofac-xml (SDN_ADVANCED.XML or sdn.xml), csv, stix (a STIX 2.1 bundle) or misp (a feed directory with manifest.json)")
	source := fs.String("source", "", "publisher of the feed, every indicator's source whatever the file says (default: ofac for --format ofac, misp for misp; required for csv and stix)")
	name := fs.String("name", "", "feed name, the indicators' namespace: a newer file with the same name replaces the older, and a feed changes only its own indicators (default: FORMAT:FILE-NAME)")
	currency := fs.String("currency", "", "ofac: currency code of the list (XBT, ETH, USDT, USDC) when the file name does not say")
	chainName := fs.String("chain", "", "csv: chain of rows without a chain column (eth or btc)")
	allowShrink := fs.Bool("allow-shrink", false, "let the new version revoke more than half of the feed's indicators")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("intel import: give one file")
	}
	path := fs.Arg(0)
	var content []byte
	var err error
	if *format != "misp" {
		if content, err = readLimited(path, 1<<30); err != nil {
			return fmt.Errorf("intel import: %w", err)
		}
	}
	if *name == "" {
		*name = *format + ":" + strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	now := time.Now().UTC().Truncate(time.Second)
	var feed *intel.Feed
	switch *format {
	case "ofac":
		cur := *currency
		if cur == "" {
			cur = intel.OFACCurrency(path)
		}
		if *source == "" {
			*source = "ofac"
		}
		feed, err = intel.ParseOFACList(content, *name, cur, now)
		if feed != nil {
			feed.Source = *source
			for i := range feed.Indicators {
				feed.Indicators[i].Source = *source
			}
		}
	case "csv":
		if *source == "" {
			return errors.New("intel import: --source is required for csv (the feed's publisher)")
		}
		feed, err = intel.ParseCSV(content, *name, *source, chain.Chain(*chainName), now)
	case "ofac-xml":
		feed, err = intel.ParseOFACXML(content, *name, now)
	case "misp":
		if *source == "" {
			*source = "misp"
		}
		dir := path
		if filepath.Base(path) == "manifest.json" {
			dir = filepath.Dir(path)
		}
		feed, err = intel.ParseMISP(os.DirFS(dir), *name, *source, now)
	case "stix":
		if *source == "" {
			return errors.New("intel import: --source is required for stix (used where an object names no creator)")
		}
		feed, err = intel.ParseSTIX(content, *name, *source, now)
	default:
		return fmt.Errorf("intel import: --format %q: want ofac, ofac-xml, csv, stix or misp", *format)
	}
	if err != nil {
		return fmt.Errorf("intel import %s: nothing imported: %w", path, err)
	}
	t, err := kf.topic(ctx)
	if err != nil {
		return fmt.Errorf("intel import: %w", err)
	}
	defer t.Close()
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("intel import: %w", err)
	}
	// A feed listing other feeds' ids raises an alert on cordon.alerts.
	alerts, err := kafka.New(kc, nil, nil)
	if err != nil {
		return fmt.Errorf("intel import: %w", err)
	}
	defer func() { _ = alerts.Close() }()
	res, err := intel.Import(ctx, t, feed, intel.ImportOptions{AllowShrink: *allowShrink, Now: now, Alerts: alerts})
	if err != nil {
		return fmt.Errorf("intel import %s: nothing imported: %w", path, err)
	}
	fmt.Printf("imported %s (feed %s, version %s): %d added, %d updated, %d revoked, %d unchanged\n",
		path, res.Feed, res.Version, res.Added, res.Updated, res.Revoked, res.Unchanged)
	if res.SharedIDs > 0 {
		// Harmless (ids are per feed) but unusual: a file reusing another
		// feed's ids, OFAC's computable ones say, is worth a look.
		fmt.Fprintf(os.Stderr, "warning: %d ids of feed %s are also used by feeds %s; they are %s's own indicators and change nothing of the others'\n",
			res.SharedIDs, res.Feed, strings.Join(res.OtherFeeds, ", "), res.Feed)
	}
	for _, s := range res.Skipped {
		fmt.Println("not matched:", s)
	}
	return nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, limit>>20)
	}
	return b, nil
}

// loadIndex reads the whole topic into an index.
func loadIndex(ctx context.Context, t *intel.Topic) (*intel.Index, error) {
	x := intel.NewIndex()
	err := t.Read(ctx, false, func(k intel.Key, in *intel.Indicator) error {
		if in == nil {
			x.Delete(k)
		} else {
			x.Put(in)
		}
		return nil
	}, nil)
	return x, err
}

func cmdIntelCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("intel check", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	chainName := fs.String("chain", "", "eth or btc")
	network := fs.String("network", "mainnet", "network of the addresses (btc: mainnet, testnet, signet, regtest, simnet)")
	keyRef := fs.String("alliance-key", "", "partner sharing's alliance key (env:NAME or file:PATH): match partners' hashed listings too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var key []byte
	if *keyRef != "" {
		sec, err := iconfig.ParseSecret(*keyRef)
		if err != nil {
			return fmt.Errorf("intel check: --alliance-key: %w", err)
		}
		if len(sec.Value()) < address.MinPrivacyKey {
			return fmt.Errorf("intel check: --alliance-key: shorter than %d bytes", address.MinPrivacyKey)
		}
		key = []byte(sec.Value())
	}
	c := chain.Chain(*chainName)
	if c != chain.ETH && c != chain.BTC {
		return fmt.Errorf("intel check: --chain %q: want eth or btc", *chainName)
	}
	if fs.NArg() == 0 {
		return errors.New("intel check: give one or more addresses")
	}
	t, err := kf.topic(ctx)
	if err != nil {
		return fmt.Errorf("intel check: %w", err)
	}
	defer t.Close()
	x, err := loadIndex(ctx, t)
	if err != nil {
		return fmt.Errorf("intel check: %w", err)
	}
	if key != nil {
		x.SetPrivacyKey(key)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	now := time.Now()
	for _, a := range fs.Args() {
		if err := enc.Encode(intel.Screen(x, c, *network, a, now)); err != nil {
			return err
		}
	}
	return nil
}

func cmdIntelStats(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("intel stats", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	format := fs.String("format", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := kf.topic(ctx)
	if err != nil {
		return fmt.Errorf("intel stats: %w", err)
	}
	defer t.Close()
	cur, err := intel.Current(ctx, t)
	if err != nil {
		return fmt.Errorf("intel stats: %w", err)
	}
	st := intel.Summarize(cur, time.Now())
	st.Refused = t.Refused()
	if *format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Printf("%d indicators: %d active, %d revoked, %d expired or not yet valid (topic %s; %d records refused%s)\n",
		st.Total, st.Active, st.Revoked, st.Inactive, t.Name(), t.Bad(), refusedDetail(t.Refused()))
	if n := t.Refused()[intel.RefusedLegacyKey]; n > 0 {
		fmt.Printf("%d records are keyed by bare indicator ids (written before indicators were namespaced by feed) and are not matched: re-import every feed once (docs/intel.md, Migration)\n", n)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, g := range []struct {
		name string
		m    map[string]int
	}{{"SOURCE", st.BySource}, {"CATEGORY", st.ByCategory}, {"CHAIN", st.ByChain}} {
		fmt.Fprintf(tw, "%s\tACTIVE\n", g.name)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range g.m {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(tw, "%s\t%d\n", k, g.m[k])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// refusedDetail is ": N reason, …" for the refusals by reason.
func refusedDetail(by map[string]int64) string {
	if len(by) == 0 {
		return ""
	}
	parts := make([]string, 0, len(by))
	for _, r := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d %s", by[r], r))
	}
	return ": " + strings.Join(parts, ", ")
}
