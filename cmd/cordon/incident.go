package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/detect/incident"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/internal/uuid"
)

const incidentUsage = `cordon incident: incidents and their evidence (docs/detect.md)

  cordon incident list [--all] [--format table|json]
  cordon incident open --title T [--severity S] [--address CHAIN:ADDRESS]... [--by NAME]
  cordon incident note ID --text T [--by NAME]
  cordon incident close ID --reason T [--by NAME]
  cordon incident timeline ID [--format text|html|json]
  cordon incident seal ID [--out DIR] [--clickhouse ADDR] [--eth-rpc URL] [--by NAME]
  cordon incident verify DIR [--trust KEY]... [--offline]

Every command takes --config FILE, --brokers B or --data-dir DIR (the dev
system's) for Kafka. Writing (open, note, close, seal) signs the event
with detection's record key (record_auth.keys.detect). An operator's
incident gathers the alerts that name its --address values (chain:address,
e.g. eth:0xab…); detection opens incidents itself on alerts from
detect.incidents.open_at. seal writes an evidence bundle once, into a new
directory (default evidence/<id>-<time>), and records its manifest's hash
on cordon.incidents; verify checks every file against the signed manifest
and the manifest against that record, and exits non-zero on any change.
--by defaults to $CORDON_OPERATOR, else $USER.
`

func cmdIncident(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, incidentUsage)
		return errors.New("incident: no subcommand given")
	}
	switch args[0] {
	case "list":
		return incidentList(ctx, args[1:], os.Stdout)
	case "open":
		return incidentOpen(ctx, args[1:], os.Stdout)
	case "note", "close":
		return incidentNote(ctx, args[0], args[1:], os.Stdout)
	case "timeline":
		return incidentTimeline(ctx, args[1:], os.Stdout)
	case "seal":
		return incidentSeal(ctx, args[1:], os.Stdout)
	case "verify":
		return incidentVerify(ctx, args[1:], os.Stdout)
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, incidentUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, incidentUsage)
	return fmt.Errorf("incident: unknown subcommand %q", args[0])
}

// parseIncident parses flags that may come after the positional ID.
func parseIncident(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != positional {
		return nil, fmt.Errorf("%s: want %d argument(s), got %q", fs.Name(), positional, pos)
	}
	return pos, nil
}

// readIncidents reads the incidents topic to its end (each record's
// signature verified by the read).
func readIncidents(ctx context.Context, kc kafka.Config) ([]incident.Event, error) {
	var out []incident.Event
	err := kafka.ReadLog(ctx, kc, kc.Topics.Incidents, kafka.LogOptions{ClientID: "cordon-incident", Settle: 10 * time.Second}, func(r *kafka.Record) error {
		var e incident.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return fmt.Errorf("the incident event at offset %d: %w", r.Offset, err)
		}
		if err := e.Check(); err != nil {
			return fmt.Errorf("the incident event at offset %d: %w", r.Offset, err)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func findIncident(ctx context.Context, kc kafka.Config, id string) (*incident.View, error) {
	evs, err := readIncidents(ctx, kc)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(id, incident.Prefix) {
		id = incident.Prefix + id
	}
	v := incident.Fold(evs)[id]
	if v == nil {
		return nil, fmt.Errorf("no incident %s on %s", id, kc.Topics.Incidents)
	}
	return v, nil
}

func incidentList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("incident list", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	all := fs.Bool("all", false, "closed incidents too")
	format := fs.String("format", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("incident list: --format %q: want table or json", *format)
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("incident list: %w", err)
	}
	evs, err := readIncidents(ctx, kc)
	if err != nil {
		return fmt.Errorf("incident list: %w", err)
	}
	var views []*incident.View
	for _, v := range incident.Fold(evs) {
		if *all || v.Status == "open" {
			views = append(views, v)
		}
	}
	slices.SortFunc(views, func(a, b *incident.View) int { return a.Opened.Compare(b.Opened) })
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		for _, v := range views {
			v.Events = nil
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tOPENED\tBY\tALERTS\tSEALS\tTITLE")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", v.ID, v.Status, v.Severity, v.Opened.UTC().Format(time.RFC3339), v.OpenedBy,
			len(v.Alerts), len(v.Seals), v.Title)
	}
	return tw.Flush()
}

func actor(by string) (string, error) {
	for _, s := range []string{by, os.Getenv("CORDON_OPERATOR"), os.Getenv("USER")} {
		if s = strings.TrimSpace(s); s != "" {
			if len(s) > 100 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return "", fmt.Errorf("--by %q: at most 100 printable characters", s)
			}
			return s, nil
		}
	}
	return "", errors.New("no --by given (and neither $CORDON_OPERATOR nor $USER is set): say who you are")
}

// writeEvent signs and writes an operator's event.
func writeEvent(ctx context.Context, kc kafka.Config, e incident.Event) error {
	if err := e.Check(); err != nil {
		return err
	}
	if _, ok := kc.Auth.Signer(recordauth.Detect); !ok {
		return errors.New("writing an incident event needs detection's record key (record_auth.keys.detect)")
	}
	v, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	p, err := kafka.New(kc, nil, nil)
	if err != nil {
		return err
	}
	defer func() { _ = p.Close() }()
	if err := kafka.Ensure(ctx, kc, kc.Topics.Incidents); err != nil {
		return err
	}
	return p.PublishKeyed(ctx, kc.Topics.Incidents, "incident", []kafka.KeyValue{{Key: e.Incident, Value: v}})
}

var keyForm = regexp.MustCompile(`^(eth|btc):[0-9A-Za-z]{20,100}$`)

func incidentOpen(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("incident open", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	title := fs.String("title", "", "what happened, in a line")
	sev := fs.String("severity", "high", "low, medium, high or critical")
	by := fs.String("by", "", "who opens it")
	var addrs listFlag
	fs.Var(&addrs, "address", "CHAIN:ADDRESS the incident is about (repeatable): the alerts naming it join the incident")
	if _, err := parseIncident(fs, args, 0); err != nil {
		return err
	}
	who, err := actor(*by)
	if err != nil {
		return fmt.Errorf("incident open: %w", err)
	}
	if strings.TrimSpace(*title) == "" || len(*title) > 300 {
		return errors.New("incident open: --title is required (at most 300 characters)")
	}
	if !slices.Contains([]string{"low", "medium", "high", "critical"}, *sev) {
		return fmt.Errorf("incident open: --severity %q: want low, medium, high or critical", *sev)
	}
	var keys []string
	for _, a := range splitList(addrs) {
		if !keyForm.MatchString(a) {
			return fmt.Errorf("incident open: --address %q: want eth:0x… or btc:… (chain, colon, address)", a)
		}
		if strings.HasPrefix(a, "eth:") {
			a = strings.ToLower(a)
		}
		keys = append(keys, a)
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("incident open: %w", err)
	}
	rid, err := uuid.V4()
	if err != nil {
		return err
	}
	e := incident.Event{V: chain.SchemaVersion, ID: "op-" + rid, Incident: incident.Prefix + rid, Type: incident.Opened, Time: time.Now().UTC(),
		Actor: who, Title: *title, Severity: *sev, Keys: keys, Text: "opened by " + who}
	if err := writeEvent(ctx, kc, e); err != nil {
		return fmt.Errorf("incident open: %w", err)
	}
	fmt.Fprintln(stdout, e.Incident)
	return nil
}

func incidentNote(ctx context.Context, what string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("incident "+what, flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	text := fs.String("text", "", "the note")
	reason := fs.String("reason", "", "why it is closed")
	by := fs.String("by", "", "who writes it")
	pos, err := parseIncident(fs, args, 1)
	if err != nil {
		return err
	}
	who, err := actor(*by)
	if err != nil {
		return fmt.Errorf("incident %s: %w", what, err)
	}
	typ, body := incident.Noted, *text
	if what == "close" {
		typ, body = incident.Closed, *reason
	}
	if strings.TrimSpace(body) == "" || len(body) > 4000 {
		return fmt.Errorf("incident %s: %s is required (at most 4000 characters)", what, map[string]string{"note": "--text", "close": "--reason"}[what])
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("incident %s: %w", what, err)
	}
	v, err := findIncident(ctx, kc, pos[0])
	if err != nil {
		return fmt.Errorf("incident %s: %w", what, err)
	}
	if v.Status == "closed" {
		return fmt.Errorf("incident %s: %s was closed at %s", what, v.ID, v.Closed.Format(time.RFC3339))
	}
	rid, err := uuid.V4()
	if err != nil {
		return err
	}
	e := incident.Event{V: chain.SchemaVersion, ID: "op-" + rid, Incident: v.ID, Type: typ, Time: time.Now().UTC(), Actor: who, Text: body}
	if err := writeEvent(ctx, kc, e); err != nil {
		return fmt.Errorf("incident %s: %w", what, err)
	}
	fmt.Fprintf(stdout, "%s: %s\n", v.ID, typ)
	return nil
}

func incidentTimeline(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("incident timeline", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	format := fs.String("format", "text", "text, html or json")
	pos, err := parseIncident(fs, args, 1)
	if err != nil {
		return err
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("incident timeline: %w", err)
	}
	v, err := findIncident(ctx, kc, pos[0])
	if err != nil {
		return fmt.Errorf("incident timeline: %w", err)
	}
	switch *format {
	case "text":
		return v.WriteText(stdout)
	case "html":
		return v.WriteHTML(stdout)
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return fmt.Errorf("incident timeline: --format %q: want text, html or json", *format)
}

// hexHash is what a block or transaction hash must look like to be put
// in a ClickHouse query.
var hexHash = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{64}$`)

func incidentSeal(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("incident seal", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	out := fs.String("out", "", "the bundle's directory, which must not exist (default evidence/<id>-<time>)")
	chAddr := fs.String("clickhouse", "", "ClickHouse native-protocol host:port for the chain facts (default: --config's, else the dev system's)")
	ethRPC := fs.String("eth-rpc", "", "an Ethereum JSON-RPC endpoint for the wallets' balances (default: --config's first, else the dev system's)")
	by := fs.String("by", "", "who seals it")
	pos, err := parseIncident(fs, args, 1)
	if err != nil {
		return err
	}
	who, err := actor(*by)
	if err != nil {
		return fmt.Errorf("incident seal: %w", err)
	}
	kc, err := kf.kafka()
	if err != nil {
		return fmt.Errorf("incident seal: %w", err)
	}
	signer, ok := kc.Auth.Signer(recordauth.Detect)
	if !ok {
		return errors.New("incident seal: sealing needs detection's record key (record_auth.keys.detect)")
	}
	v, err := findIncident(ctx, kc, pos[0])
	if err != nil {
		return fmt.Errorf("incident seal: %w", err)
	}
	var chCfg clickhouse.Config
	switch {
	case *kf.config != "":
		file, err := config.Load(*kf.config, os.Environ())
		if err != nil {
			return fmt.Errorf("incident seal: %w", err)
		}
		chCfg = file.ClickHouse.Config
		if *ethRPC == "" && len(file.Chains.ETH) > 0 && len(file.Chains.ETH[0].Endpoints) > 0 {
			*ethRPC = file.Chains.ETH[0].Endpoints[0].URL.Value()
		}
	default:
		if ep, err := readEndpoints(*kf.dataDir); err == nil {
			if ep.ClickHouse != "" {
				chCfg.Addrs = []string{ep.ClickHouse}
			}
			if *ethRPC == "" {
				*ethRPC = ep.ETHRPC
			}
		}
	}
	if *chAddr != "" {
		chCfg.Addrs = []string{*chAddr}
	}
	now := time.Now().UTC()
	if *out == "" {
		*out = filepath.Join("evidence", strings.TrimPrefix(v.ID, incident.Prefix)+"-"+now.Format("20060102T150405Z"))
	}
	files, sources, err := collectEvidence(ctx, kc, v, chCfg, *ethRPC)
	if err != nil {
		return fmt.Errorf("incident seal: %w", err)
	}
	seal, err := incident.Write(*out, incident.Manifest{V: 1, Incident: v.ID, Created: now, Sources: sources}, files, signer)
	if err != nil {
		return fmt.Errorf("incident seal: %w", err)
	}
	abs, err := filepath.Abs(*out)
	if err == nil {
		seal.Path = abs
	}
	e := incident.Event{V: chain.SchemaVersion, ID: "seal-" + seal.Manifest[:32], Incident: v.ID, Type: incident.Sealed, Time: now, Actor: who,
		Seal: &seal, Text: "evidence bundle sealed by " + who}
	if err := writeEvent(ctx, kc, e); err != nil {
		return fmt.Errorf("incident seal: the bundle is written (%s) but its record is not: %w; run verify --offline, and seal again to record one", *out, err)
	}
	fmt.Fprintf(stdout, "%s: sealed %d files in %s (manifest sha256 %s)\n", v.ID, seal.Files, *out, seal.Manifest)
	return nil
}

// collectEvidence gathers the incident's files: its history, every
// record of its alerts, the chain's facts of their blocks and
// transactions (ClickHouse), the gate's audit log over the incident's
// time, the indicator store's version (the indicator topic's end
// offsets) and the wallets' balances (Ethereum nodes). What cannot be
// collected is named in the sources, not left out silently.
func collectEvidence(ctx context.Context, kc kafka.Config, v *incident.View, chCfg clickhouse.Config, ethRPC string) ([]incident.File, map[string]string, error) {
	sources := map[string]string{}
	var files []incident.File
	add := func(name string, x any) error {
		b, err := json.MarshalIndent(x, "", "  ")
		if err != nil {
			return err
		}
		files = append(files, incident.File{Name: name, Data: append(b, '\n')})
		return nil
	}
	if err := add("incident.json", v); err != nil {
		return nil, nil, err
	}
	sources["incident.json"] = kc.Topics.Incidents
	ids := map[string]bool{}
	for _, a := range v.Alerts {
		ids[a.ID] = true
	}
	type alertRecord struct {
		Offset    int64       `json:"offset"`
		Partition int         `json:"partition"`
		Alert     chain.Alert `json:"alert"`
	}
	var recs []alertRecord
	err := kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "cordon-incident-seal", Settle: 10 * time.Second}, func(r *kafka.Record) error {
		var a chain.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			return nil //nolint:nilerr // not an alert of ours: the topic has many writers
		}
		if ids[a.ID] || (a.Type == "containment" && ids[a.Details["alert"]]) {
			recs = append(recs, alertRecord{r.Offset, r.Partition, a})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read the alerts: %w", err)
	}
	if err := add("alerts.json", recs); err != nil {
		return nil, nil, err
	}
	sources["alerts.json"] = kc.Topics.Alerts + " (every record of the incident's alerts and their containment records)"

	// The chain's facts from ClickHouse.
	var blocks, txs []string
	for _, a := range v.Alerts {
		if hexHash.MatchString(a.BlockHash) {
			blocks = append(blocks, strings.ToLower(a.BlockHash))
		}
		if hexHash.MatchString(a.TxHash) {
			txs = append(txs, strings.ToLower(a.TxHash))
		}
	}
	slices.Sort(blocks)
	slices.Sort(txs)
	blocks, txs = slices.Compact(blocks), slices.Compact(txs)
	if len(chCfg.Addrs) == 0 {
		sources["chain.json"] = "not collected: no ClickHouse configured (--clickhouse)"
	} else if facts, err := chainFacts(ctx, chCfg, blocks, txs); err != nil {
		sources["chain.json"] = "not collected: " + err.Error()
	} else {
		if err := add("chain.json", facts); err != nil {
			return nil, nil, err
		}
		sources["chain.json"] = fmt.Sprintf("ClickHouse %s: blocks (removed ones too) and transfers of %d blocks and %d transactions", chCfg.Addrs[0], len(blocks), len(txs))
	}

	// The gate's audit log over the incident's time (an hour before its
	// opening on).
	from := v.Opened.Add(-time.Hour)
	var audit []json.RawMessage
	err = kafka.ReadLog(ctx, kc, kc.Topics.Audit, kafka.LogOptions{ClientID: "cordon-incident-seal"}, func(r *kafka.Record) error {
		var head struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(r.Value, &head) == nil && !head.Time.Before(from) {
			audit = append(audit, json.RawMessage(r.Value))
		}
		return nil
	})
	if err != nil {
		sources["audit.json"] = "not collected: " + err.Error()
	} else {
		if err := add("audit.json", audit); err != nil {
			return nil, nil, err
		}
		sources["audit.json"] = fmt.Sprintf("%s: the records from %s (an hour before the incident opened) to the seal", kc.Topics.Audit, from.Format(time.RFC3339))
	}

	// The indicator store's version: where its topic ended.
	if ends, err := kafka.Ends(ctx, kc, kc.Topics.Intel); err != nil {
		sources["intel.json"] = "not collected: " + err.Error()
	} else {
		if err := add("intel.json", map[string]any{"topic": kc.Topics.Intel, "end_offsets": ends[kc.Topics.Intel]}); err != nil {
			return nil, nil, err
		}
		sources["intel.json"] = "the indicator topic's end offsets at the seal: the store's version (replay it to those offsets to see what screening knew)"
	}

	// The wallets' balances, now and before each alert's block.
	var addrs []string
	heights := map[string]uint64{}
	for _, a := range v.Alerts {
		if a.Chain != chain.ETH {
			continue
		}
		for _, ad := range a.Addresses {
			if common.IsHexAddress(ad) {
				ad = strings.ToLower(ad)
				addrs = append(addrs, ad)
				if h, ok := heights[ad]; !ok || (a.Height > 0 && a.Height < h) {
					heights[ad] = a.Height
				}
			}
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if len(addrs) > 200 {
		addrs = addrs[:200]
	}
	switch {
	case len(addrs) == 0:
	case ethRPC == "":
		sources["wallets.json"] = "not collected: no Ethereum endpoint (--eth-rpc)"
	default:
		w, err := balances(ctx, ethRPC, addrs, heights)
		if err != nil {
			sources["wallets.json"] = "not collected: " + err.Error()
			break
		}
		if err := add("wallets.json", w); err != nil {
			return nil, nil, err
		}
		sources["wallets.json"] = "Ethereum balances (wei) of the incident's addresses at the head and before their first alert's block, from the chain's endpoint; Bitcoin wallets: their outputs are in chain.json"
	}
	return files, sources, nil
}

func chainFacts(ctx context.Context, cfg clickhouse.Config, blocks, txs []string) (map[string]any, error) {
	if cfg.Database == "" {
		cfg.Database = "cordon"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	quoted := func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = "'" + x + "'" // hex only: checked by hexHash
		}
		return strings.Join(q, ",")
	}
	out := map[string]any{}
	rows := func(name, query string, scan func(clickhouse.Rows) (any, error)) error {
		r, err := st.Query(ctx, query)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer func() { _ = r.Close() }()
		var list []any
		for r.Next() {
			x, err := scan(r)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			list = append(list, x)
		}
		out[name] = list
		return r.Err()
	}
	if len(blocks) > 0 {
		err := rows("blocks", "SELECT chain, network, height, hash, parent_hash, toString(time), removed FROM blocks FINAL WHERE lower(hash) IN ("+quoted(blocks)+") ORDER BY height",
			func(r clickhouse.Rows) (any, error) {
				var c, n, h, p, t string
				var height uint64
				var removed uint8
				err := r.Scan(&c, &n, &height, &h, &p, &t, &removed)
				return map[string]any{"chain": c, "network": n, "height": height, "hash": h, "parent_hash": p, "time": t, "removed": removed == 1}, err
			})
		if err != nil {
			return nil, err
		}
	}
	if len(txs) > 0 {
		err := rows("transfers", "SELECT chain, network, block_number, block_hash, tx_hash, log_index, asset, standard, from_address, to_address, amount FROM transfers WHERE lower(tx_hash) IN ("+quoted(txs)+") ORDER BY block_number, log_index",
			func(r clickhouse.Rows) (any, error) {
				var c, n, bh, tx, asset, std, from, to, amount string
				var height uint64
				var li int64
				err := r.Scan(&c, &n, &height, &bh, &tx, &li, &asset, &std, &from, &to, &amount)
				return map[string]any{"chain": c, "network": n, "block_number": height, "block_hash": bh, "tx_hash": tx, "log_index": li,
					"asset": asset, "standard": std, "from": from, "to": to, "amount": amount}, err
			})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func balances(ctx context.Context, url string, addrs []string, before map[string]uint64) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	head, err := c.BlockNumber(ctx)
	if err != nil {
		return nil, err
	}
	type wallet struct {
		Address     string `json:"address"`
		Head        string `json:"balance_at_head"`
		BeforeBlock uint64 `json:"before_block,omitzero"`
		Before      string `json:"balance_before,omitempty"`
		Code        bool   `json:"contract"`
	}
	var ws []wallet
	for _, a := range addrs {
		ad := common.HexToAddress(a)
		b, err := c.BalanceAt(ctx, ad, new(big.Int).SetUint64(head))
		if err != nil {
			return nil, fmt.Errorf("balance of %s: %w", a, err)
		}
		w := wallet{Address: a, Head: b.String()}
		if h := before[a]; h > 1 {
			if pb, err := c.BalanceAt(ctx, ad, new(big.Int).SetUint64(h-1)); err == nil {
				w.BeforeBlock, w.Before = h-1, pb.String()
			}
		}
		if code, err := c.CodeAt(ctx, ad, nil); err == nil {
			w.Code = len(code) > 0
		}
		ws = append(ws, w)
	}
	return map[string]any{"head": head, "wallets": ws}, nil
}

func incidentVerify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("incident verify", flag.ContinueOnError)
	kf := addKafkaFlags(fs)
	var trust listFlag
	fs.Var(&trust, "trust", "a detection public record key (base64) the manifest's signature must verify with; repeatable (default: --config's record_auth.trust.detect, else the dev system's)")
	offline := fs.Bool("offline", false, "check the bundle alone, not that cordon.incidents recorded its manifest")
	pos, err := parseIncident(fs, args, 1)
	if err != nil {
		return err
	}
	keys := recordauth.NewKeyring()
	var kc kafka.Config
	if !*offline || len(trust) == 0 {
		if kc, err = kf.kafka(); err != nil && len(trust) == 0 {
			return fmt.Errorf("incident verify: no --trust key given, and %w", err)
		}
	}
	if len(trust) == 0 {
		keys = kc.Auth
	} else {
		for _, t := range splitList(trust) {
			if err := keys.Trust(recordauth.Detect, t); err != nil {
				return fmt.Errorf("incident verify: --trust: %w", err)
			}
		}
	}
	if !keys.Trusts(recordauth.Detect) {
		return errors.New("incident verify: no detection key to check the signature with (--trust)")
	}
	rep, err := incident.Verify(pos[0], keys)
	if err != nil {
		return fmt.Errorf("incident verify: %w", err)
	}
	if !*offline {
		// A seal just written may not be readable yet (a transaction of
		// detection's holds the topic's committed end back): read again
		// for a while before calling the bundle not the one sealed.
		found := false
		for wait := time.Now().Add(30 * time.Second); ; {
			evs, err := readIncidents(ctx, kc)
			if err != nil {
				return fmt.Errorf("incident verify: %w (--offline checks the bundle alone)", err)
			}
			found = slices.ContainsFunc(evs, func(e incident.Event) bool {
				return e.Type == incident.Sealed && e.Incident == rep.Incident && e.Seal.Manifest == rep.Manifest
			})
			if found || time.Now().After(wait) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		if !found {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: no sealed event of %s on %s records this manifest (sha256 %s): the bundle is not the one sealed",
				incident.ManifestFile, rep.Incident, kc.Topics.Incidents, rep.Manifest))
		}
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(stdout, "%s: TAMPERED (%s)\n", pos[0], rep.Incident)
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, "  "+p)
		}
		return fmt.Errorf("incident verify: %d problem(s) in the bundle", len(rep.Problems))
	}
	fmt.Fprintf(stdout, "%s: intact: %d files of %s as sealed (manifest sha256 %s, signed %s)\n", pos[0], rep.Files, rep.Incident, rep.Manifest,
		time.Unix(0, rep.SignedAt).UTC().Format(time.RFC3339))
	return nil
}
