package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/detect/incident"
	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/ingest/export"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

func waitFile(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevEndToEnd starts `cordon dev`, then uses it the way a user does:
// kcat reads the topics from endpoints.json, `cordon export` finds the
// node with no flags, and the health endpoints answer.
func TestDevEndToEnd(t *testing.T) {
	dir := t.TempDir()
	// Every step below runs under this deadline (each command honours
	// ctx): a step that cannot finish fails the test with its own error
	// long before the package's -timeout would kill the run.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	done := make(chan error, 1)
	go func() {
		// Detection has a run of its own (TestDevDetection): under -race,
		// every role of the dev in one process on two cores leaves the
		// checks below too little CPU to meet their deadlines.
		done <- cmdDev(ctx, []string{"--data-dir", dir, "--quiet", "--block-interval", "200ms", "--reorg-every", "10", "--log-level", "warn",
			"--no-detect"})
	}()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()
	waitFile(t, filepath.Join(dir, "endpoints.json"), 60*time.Second)
	// endpoints.json holds tokens and the node's password: its owner's only.
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "endpoints.json"): 0o600} {
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, mode, st.Mode().Perm(), path)
	}
	ep, err := readEndpoints(dir)
	require.NoError(t, err)
	require.NotEmpty(t, ep.Kafka)
	require.True(t, strings.HasPrefix(ep.ETHRPC, "http://127.0.0.1:"))

	// Ready once Kafka and the watcher are up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := httpGet(t, "http://"+ep.HTTP+"/readyz")
		if code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "not ready: %s", body)
		time.Sleep(100 * time.Millisecond)
	}
	code, _ := httpGet(t, "http://"+ep.HTTP+"/healthz")
	require.Equal(t, http.StatusOK, code)
	time.Sleep(3 * time.Second) // let some blocks through
	_, metrics := httpGet(t, "http://"+ep.HTTP+"/metrics")
	require.Contains(t, metrics, `cordon_watcher_blocks_added_total{chain="eth",network="devnet"}`)
	require.Contains(t, metrics, `cordon_kafka_messages_total{topic="cordon.transfers"}`)

	// A real third-party Kafka client reads the topics.
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			t.Fatal("kcat is not installed (make test installs it)")
		}
		t.Log("kcat not installed; skipping the kcat check (make test installs it)")
		kcat = ""
	} else {
		out, err := exec.Command(kcat, "-C", "-b", ep.Kafka, "-t", ep.Topics["blocks"], "-o", "beginning", "-c", "20", "-q",
			"-f", "%k\t%s\n").Output()
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		require.Len(t, lines, 20)
		for _, l := range lines {
			key, val, ok := strings.Cut(l, "\t")
			require.True(t, ok, l)
			var ev chain.BlockEvent
			require.NoError(t, json.Unmarshal([]byte(val), &ev))
			require.Equal(t, ev.Key(), key)
			require.Contains(t, []chain.Chain{chain.ETH, chain.BTC}, ev.Chain)
		}
	}

	// cordon export with no endpoint flags uses endpoints.json.
	out := filepath.Join(dir, "export.jsonl")
	// A reorg under the export (the dev reorgs every few blocks) fails it
	// with a clear error; run again, it reads the settled chain.
	require.Eventually(t, func() bool {
		_ = os.Remove(out)
		err := cmdExport(ctx, []string{"--chain", "eth", "--data-dir", dir, "--from", "0", "--to", "5", "--out", out})
		if err != nil {
			t.Logf("export: %v (again)", err)
		}
		return err == nil
	}, time.Minute, 2*time.Second, "cordon export")
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	types := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		typ := line["type"].(string)
		types[typ]++
		if typ == "transfer" {
			for _, k := range []string{"chain", "asset", "tx_hash", "log_index", "from", "to", "amount", "block_number", "block_hash"} {
				require.Contains(t, line, k)
			}
			require.IsType(t, "", line["amount"], "amount is a decimal string")
			if line["asset"] == "native" {
				require.Nil(t, line["log_index"])
			}
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 6, types["block"])
	require.Positive(t, types["transaction"])
	require.Positive(t, types["transfer"])

	checkDevBitcoin(t, ctx, dir, ep, kcat)
	checkDevClickHouse(t, ep)
	checkDevAnalysts(t, ctx, dir, ep)
	checkDevIntel(t, ctx, dir, ep)
	checkDevIndicatorsInClickHouse(t, ep)
	checkDevRetroHunt(t, ctx, dir, ep)
	checkDevDeposits(t, ctx, dir, ep)
	checkDevWithdrawals(t, ctx, dir, ep)
	checkDevSigning(t, ctx, ep)
}

// TestDevDetection: cordon dev as make run starts it, detection on,
// Ethereum only: detection's alerts reach Kafka, ClickHouse and the
// dev's webhooks (checkDevDetect).
func TestDevDetection(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	done := make(chan error, 1)
	go func() {
		done <- cmdDev(ctx, []string{"--data-dir", dir, "--quiet", "--block-interval", "200ms", "--reorg-every", "10", "--log-level", "warn",
			"--no-btc", "--partners", "0"})
	}()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()
	waitFile(t, filepath.Join(dir, "endpoints.json"), 60*time.Second)
	ep, err := readEndpoints(dir)
	require.NoError(t, err)
	checkDevDetect(t, ctx, dir, ep)
	checkDevTakeover(t, ctx, dir, ep)
	checkDevIncidents(t, ctx, dir)
}

// checkDevTakeover: the dev's contract-wallet attack raises
// contract_takeover on the block of the owner's delegatecall (the
// delegatecall, and the implementation it rewrote), before the sweep's;
// containment trips the breaker over everything; the alerts are in one
// incident with the sweep's.
func checkDevTakeover(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	kc := kafka.Config{Brokers: strings.Split(ep.Kafka, ",")}
	var dc, im chain.Alert
	var contained chain.Alert
	var sweepHeight uint64
	require.Eventually(t, func() bool {
		dc, im, contained, sweepHeight = chain.Alert{}, chain.Alert{}, chain.Alert{}, 0
		// Each alert as it stands last (a reorg's retraction keeps the
		// alert's id); the topic's partitions interleave, so the order
		// is the chain's: by height.
		last := map[string]chain.Alert{}
		err := kafka.ReadLog(ctx, kc, ep.Topics["alerts"], kafka.LogOptions{ClientID: "e2e-takeover"}, func(r *kafka.Record) error {
			var a chain.Alert
			if err := json.Unmarshal(r.Value, &a); err != nil {
				return err
			}
			last[a.ID] = a
			return nil
		})
		if err != nil {
			return false
		}
		order := slices.Collect(maps.Keys(last))
		slices.SortFunc(order, func(x, y string) int {
			return cmp.Or(cmp.Compare(last[x].Height, last[y].Height), cmp.Compare(x, y))
		})
		for _, id := range order {
			a := last[id]
			switch {
			case a.Retracted:
			case a.Rule == rules.RuleContractTakeover && a.Details["kind"] == "delegatecall" && dc.ID == "":
				dc = a
			case a.Rule == rules.RuleContractTakeover && a.Details["kind"] == "delegatecall" && a.Height > dc.Height:
				sweepHeight = a.Height // the sweep runs the attacker's logic
			case a.Rule == rules.RuleContractTakeover && a.Details["kind"] == "implementation" && im.ID == "":
				im = a
			}
		}
		for _, id := range order {
			if a := last[id]; a.Type == "containment" && dc.ID != "" && a.Details["alert"] == dc.ID {
				contained = a
			}
		}
		return dc.ID != "" && im.ID != "" && sweepHeight > 0 && contained.ID != ""
	}, 3*time.Minute, time.Second, "the takeover's alerts and containment")
	require.Equal(t, rules.SeverityCritical, dc.Severity)
	require.Equal(t, dc.Height, im.Height, "the implementation changed on the delegatecall's block")
	require.Less(t, dc.Height, sweepHeight, "the takeover is raised before the sweep's block")
	require.Contains(t, contained.Details["taken"], "breaker")
	require.Contains(t, contained.Details["not_taken"], "publish", "no sharing in this dev (--partners 0): publishing is not taken, and says so")
	var out bytes.Buffer
	require.NoError(t, incidentList(ctx, []string{"--data-dir", dir, "--format", "json"}, &out))
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var v incident.View
		require.NoError(t, json.Unmarshal([]byte(line), &v))
		for _, a := range v.Alerts {
			if a.ID == dc.ID {
				found = true
				require.Equal(t, rules.SeverityCritical, v.Severity)
			}
		}
	}
	require.True(t, found, "the takeover is in an incident")
}

// checkDevIncidents: the dev's high alerts open incidents (open_at high);
// an operator notes one, seals its evidence, and the bundle verifies —
// its hashes also by Python's hashlib — until one byte of it changes;
// the timeline shows it all; closing it is in its history.
func checkDevIncidents(t testing.TB, ctx context.Context, dir string) {
	dd := []string{"--data-dir", dir, "--by", "e2e-operator"}
	var id string
	require.Eventually(t, func() bool {
		var out bytes.Buffer
		if incidentList(ctx, []string{"--data-dir", dir, "--format", "json"}, &out) != nil {
			return false
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var v incident.View
			if json.Unmarshal([]byte(line), &v) == nil && v.OpenedBy == incident.Actor && len(v.Alerts) > 0 {
				id = v.ID
				return true
			}
		}
		return false
	}, 2*time.Minute, time.Second, "detection opened no incident")
	var out bytes.Buffer
	require.NoError(t, incidentNote(ctx, "note", append([]string{id, "--text", "paged the on-call"}, dd...), &out))
	bundle := filepath.Join(dir, "evidence", "b1")
	out.Reset()
	require.NoError(t, incidentSeal(ctx, append([]string{id, "--out", bundle}, dd...), &out))
	require.Contains(t, out.String(), "sealed")
	out.Reset()
	require.NoError(t, incidentVerify(ctx, []string{bundle, "--data-dir", dir}, &out), out.String())
	require.Contains(t, out.String(), "intact")
	for _, f := range []string{"incident.json", "alerts.json", "chain.json", "audit.json", "intel.json", "wallets.json"} {
		require.FileExists(t, filepath.Join(bundle, f))
	}
	var facts struct{ Transfers []map[string]any }
	raw, err := os.ReadFile(filepath.Join(bundle, "chain.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &facts))
	require.NotEmpty(t, facts.Transfers, "the alerts' transfers from ClickHouse")
	py := exec.Command("python3", "-c", `
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
for f in m["files"]:
    h = hashlib.sha256(open(os.path.join(d, f["name"]), "rb").read()).hexdigest()
    if h != f["sha256"]:
        sys.exit("changed: " + f["name"])
print("ok", len(m["files"]))
`, bundle)
	pyOut, err := py.CombinedOutput()
	require.NoError(t, err, string(pyOut))
	require.Contains(t, string(pyOut), "ok ")
	// one byte changed
	p := filepath.Join(bundle, "alerts.json")
	require.NoError(t, os.Chmod(p, 0o640))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)/2] ^= 1
	require.NoError(t, os.WriteFile(p, b, 0o640))
	out.Reset()
	require.Error(t, incidentVerify(ctx, []string{bundle, "--data-dir", dir}, &out))
	require.Contains(t, out.String(), "alerts.json: changed")
	pyOut, err = exec.Command("python3", "-c", py.Args[2], bundle).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(pyOut), "changed: alerts.json")
	// the bundle is never written twice
	require.ErrorContains(t, incidentSeal(ctx, append([]string{id, "--out", bundle}, dd...), &out), "written once")
	require.NoError(t, incidentNote(ctx, "close", append([]string{id, "--reason", "contained; drill over"}, dd...), &out))
	out.Reset()
	// The close is read back once detection's open round ends (its
	// transaction holds the topic's committed end back).
	var tl string
	var ops []string // the timeline but its alerts
	wants := []string{"opened", "note: paged the on-call", "evidence sealed", "closed", "e2e-operator"}
	require.Eventually(t, func() bool {
		out.Reset()
		require.NoError(t, incidentTimeline(ctx, []string{id, "--data-dir", dir}, &out))
		tl, ops = out.String(), nil
		for _, l := range strings.Split(tl, "\n") {
			if !strings.Contains(l, "  alert  ") && !strings.HasPrefix(l, "      ") {
				ops = append(ops, l)
			}
		}
		for _, want := range wants {
			if !strings.Contains(tl, want) {
				return false
			}
		}
		return true
	}, time.Minute, time.Second, "the timeline but its alerts:\n%s", func() string { return strings.Join(ops, "\n") }())
	out.Reset()
	require.NoError(t, incidentTimeline(ctx, []string{id, "--data-dir", dir, "--format", "html"}, &out))
	require.Contains(t, out.String(), "<svg")
	require.ErrorContains(t, incidentNote(ctx, "note", append([]string{id, "--text", "late"}, dd...), &out), "was closed")
}

// checkDevDetect: detection runs in cordon dev and its rules raise alerts
// in cordon.alerts with the chain facts: the dev feed's flagged addresses
// trade with our deposit addresses, and the dev's operator rule (CEL)
// sees the token whales. The dev's webhook receiver
// verifies the signed deliveries (a bad signature would be refused and
// the delivery retried into a dead letter) and its chat log holds the
// messages.
func checkDevDetect(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		byRule := map[string]chain.Alert{}
		err := kafka.ReadLog(ctx, kafka.Config{Brokers: strings.Split(ep.Kafka, ",")}, ep.Topics["alerts"], kafka.LogOptions{ClientID: "e2e-detect"},
			func(r *kafka.Record) error {
				var a chain.Alert
				if json.Unmarshal(r.Value, &a) == nil && strings.HasPrefix(a.ID, "detect/") {
					require.Equal(t, a.ID, string(r.Key))
					byRule[a.Rule] = a
				}
				return nil
			})
		if err != nil { // the topics are not created yet
			require.True(t, time.Now().Before(deadline), "read the alerts: %v", err)
			time.Sleep(time.Second)
			continue
		}
		// The dev's feed lists a counterparty of the devnet traffic, so
		// flagged_contact is certain; the other rules (the operator's CEL
		// whale rule, outflow_large, the poisoning rules) depend on which
		// traffic the load lets through in time, and are only logged.
		if fc, ok := byRule["flagged_contact"]; ok {
			require.Equal(t, chain.ETH, fc.Chain)
			require.NotEmpty(t, fc.TxHash)
			require.NotEmpty(t, fc.BlockHash)
			require.Positive(t, fc.Height)
			require.Len(t, fc.Addresses, 2)
			require.Equal(t, "high", fc.Severity)
			t.Logf("detection's rules raised so far: %v", slices.Sorted(maps.Keys(byRule)))
			break
		}
		require.True(t, time.Now().Before(deadline), "detection raised no flagged_contact alert: %v", slices.Sorted(maps.Keys(byRule)))
		time.Sleep(time.Second)
	}
	// The loader copies them into ClickHouse (read by clickhouse-client).
	client, err := exec.LookPath("clickhouse-client")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ep.ClickHouse)
	require.NoError(t, err)
	for {
		out, err := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", "cordon", "-q",
			`SELECT count() FROM active_alerts WHERE rule = 'flagged_contact' AND length(addresses) = 2 AND tx_hash != ''`).CombinedOutput()
		require.NoError(t, err, string(out))
		if n := strings.TrimSpace(string(out)); n != "0" {
			break
		}
		require.True(t, time.Now().Before(deadline), "no flagged_contact alert in ClickHouse's active_alerts")
		time.Sleep(time.Second)
	}
	_, metrics := httpGet(t, "http://"+ep.HTTP+"/metrics")
	require.Contains(t, metrics, `cordon_detect_blocks_total{chain="eth"}`)
	require.Contains(t, metrics, `cordon_detect_alerts_total{rule="flagged_contact",severity="high"}`)
	for {
		_, metrics = httpGet(t, "http://"+ep.HTTP+"/metrics")
		if strings.Contains(metrics, `cordon_notify_delivered_total{webhook="dev-soc"}`) && strings.Contains(metrics, `cordon_notify_delivered_total{webhook="dev-chat"}`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "no alert delivered to the dev webhooks")
		time.Sleep(time.Second)
	}
	require.NotContains(t, metrics, `cordon_notify_dead_letters_total{webhook="dev-soc"}`)
	chat, err := os.ReadFile(filepath.Join(dir, "chat.log"))
	require.NoError(t, err)
	require.Contains(t, string(chat), "[HIGH] flagged_contact on eth/devnet: ")
}

// checkDevSigning: approved withdrawals are signed, broadcast and
// confirmed on both chains; checked with code cordon did not write:
// go-ethereum recovers the hot wallet as the sender on the devnet, btcd's
// script engine executes every input of the 2-of-3 P2WSH spend.
func checkDevSigning(t testing.TB, ctx context.Context, ep endpoints) {
	c := gateClient{api: ep.API.URL, token: ep.API.Tokens["approvals"]}
	confirmed := map[string]gate.Withdrawal{}
	require.Eventually(t, func() bool {
		var out struct{ Withdrawals []gate.Withdrawal }
		if err := c.call(ctx, "GET", "/v1/withdrawals?status="+gate.StatusConfirmed+"&limit=100", nil, &out); err != nil {
			return false
		}
		for _, w := range out.Withdrawals {
			confirmed[w.Intent.Chain] = w
		}
		return len(confirmed) == 2
	}, 4*time.Minute, time.Second, "confirmed withdrawals on both chains; saw %v", keys(confirmed))

	w := confirmed["eth"]
	ec, err := ethclient.DialContext(ctx, ep.ETHRPC)
	require.NoError(t, err)
	defer ec.Close()
	tx, _, err := ec.TransactionByHash(ctx, common.HexToHash(w.Tx.TxID))
	require.NoError(t, err)
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	require.NoError(t, err)
	require.Equal(t, strings.ToLower(w.Intent.Destination), strings.ToLower(tx.To().Hex()))
	require.Equal(t, w.Intent.Amount, tx.Value().String())
	rc, err := ec.TransactionReceipt(ctx, tx.Hash())
	require.NoError(t, err)
	require.Equal(t, types.ReceiptStatusSuccessful, rc.Status)
	require.Equal(t, ep.HotWallets["eth/"+devNetwork], from.Hex(), "signed by the hot wallet's key")

	b := confirmed["btc"]
	rpc, err := rpcclient.New(&rpcclient.ConnConfig{Host: strings.TrimPrefix(ep.BTCRPC.URL, "http://"), User: ep.BTCRPC.User, Pass: ep.BTCRPC.Password,
		HTTPPostMode: true, DisableTLS: true}, nil)
	require.NoError(t, err)
	defer rpc.Shutdown()
	h, err := chainhash.NewHashFromStr(b.Tx.TxID)
	require.NoError(t, err)
	got, err := rpc.GetRawTransaction(h)
	require.NoError(t, err)
	btx := got.MsgTx()
	prevs := txscript.NewMultiPrevOutFetcher(nil)
	for _, in := range btx.TxIn {
		prev, err := rpc.GetRawTransaction(&in.PreviousOutPoint.Hash)
		require.NoError(t, err)
		prevs.AddPrevOut(in.PreviousOutPoint, prev.MsgTx().TxOut[in.PreviousOutPoint.Index])
	}
	hashes := txscript.NewTxSigHashes(btx, prevs)
	for i, in := range btx.TxIn {
		po := prevs.FetchPrevOutput(in.PreviousOutPoint)
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(po.PkScript, &chaincfg.SimNetParams)
		require.NoError(t, err)
		require.Equal(t, txscript.WitnessV0ScriptHashTy, txscript.GetScriptClass(po.PkScript))
		require.Equal(t, ep.HotWallets["btc/"+devBTCNetwork], addrs[0].EncodeAddress(), "input %d spends the 2-of-3 hot wallet", i)
		e, err := txscript.NewEngine(po.PkScript, btx, i, txscript.StandardVerifyFlags, nil, hashes, po.Value, prevs)
		require.NoError(t, err)
		require.NoError(t, e.Execute(), "input %d", i)
	}
}

// checkDevWithdrawals: the dev traffic's withdrawals pass the gate: some
// approved by the dev approvers' signatures, one to the flagged account
// denied, a lookalike rejected; an approver's CLI approves a pending one
// with their key file; the audit log verifies.
func checkDevWithdrawals(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	require.Len(t, ep.Approvers, 5)
	c := gateClient{api: ep.API.URL, token: ep.API.Tokens["approvals"]}
	seen := map[string]gate.Withdrawal{}
	require.Eventually(t, func() bool {
		var out struct{ Withdrawals []gate.Withdrawal }
		if err := c.call(ctx, "GET", "/v1/withdrawals?limit=1000", nil, &out); err != nil {
			return false
		}
		for _, w := range out.Withdrawals {
			key := w.Status
			switch w.Status {
			case gate.StatusDenied:
				key += "/" + w.Decision.Rule
			case gate.StatusSigning, gate.StatusSigned, gate.StatusBroadcast, gate.StatusMined, gate.StatusConfirmed:
				key = gate.StatusApproved // approved and handed on to signing since
			}
			seen[key] = w
		}
		_, approved := seen[gate.StatusApproved]
		_, flagged := seen[gate.StatusDenied+"/flagged-destination"]
		_, rejected := seen[gate.StatusRejected]
		_, pending := seen[gate.StatusPending]
		return approved && flagged && rejected && pending
	}, 3*time.Minute, time.Second, "approved, denied (flagged), rejected and pending withdrawals; saw %v", keys(seen))
	require.Contains(t, seen[gate.StatusRejected].Reason, "address poisoning")
	ok := seen[gate.StatusApproved]
	h, err := ok.Intent.Hash()
	require.NoError(t, err)
	require.Equal(t, ok.Hash, h)
	require.GreaterOrEqual(t, len(ok.Approvals), 2, "approved by a quorum")

	// An approver signs with their key file through the CLI.
	pend := seen[gate.StatusPending]
	var who string
	for _, a := range ep.Approvers {
		if !slices.ContainsFunc(pend.Approvals, func(x intent.Approval) bool { return x.Approver == a.Name }) {
			who = a.KeyFile
			break
		}
	}
	err = cmdWithdrawals(ctx, []string{"approve", pend.Intent.ID, "--key", who, "--data-dir", dir})
	if err != nil {
		// The dev approvers may have finished it meanwhile.
		require.Regexp(t, "already|quorum|released|closed", err.Error())
	}
	require.NoError(t, cmdWithdrawals(ctx, []string{"show", pend.Intent.ID, "--data-dir", dir}))
	// The address book: proposed, then approved by two of security with
	// their key files through the CLI; it counts after its time lock.
	require.NoError(t, cmdAddressBook(ctx, []string{"add", "--account", "dev-account-1", "--chain", "eth", "--network", devNetwork,
		"--address", "0x00000000000000000000000000000000000c01d5", "--label", "cold", "--data-dir", dir}))
	var book struct{ Entries []gate.BookEntry }
	require.NoError(t, c.call(ctx, "GET", "/v1/addressbook?account=dev-account-1", nil, &book))
	require.Len(t, book.Entries, 1)
	id := book.Entries[0].ID
	for _, who := range []string{"alice", "bob"} {
		require.NoError(t, cmdAddressBook(ctx, []string{"approve", id, "--key", devApproverKey(dir, who), "--data-dir", dir}))
	}
	require.NoError(t, c.call(ctx, "GET", "/v1/addressbook?account=dev-account-1", nil, &book))
	require.NotNil(t, book.Entries[0].ActiveAt, "the quorum starts the time lock")
	require.NoError(t, runAuditVerify(ctx, []string{"--data-dir", dir}, io.Discard), "the dev system's gate key is trusted by default")
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// checkDevDeposits: deposits to the simulated users' addresses are
// credited on cordon.deposits (read with kcat), and those from the dev
// feed's flagged accounts are held with the indicator as the reason.
func checkDevDeposits(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	kcat, err := exec.LookPath("kcat")
	require.NoError(t, err)
	type event struct {
		ID       string   `json:"id"`
		Status   string   `json:"status"`
		Reasons  []string `json:"reasons"`
		Credits  int      `json:"credits"`
		Content  string   `json:"content"`
		Decision *struct {
			Operator string `json:"operator"`
		} `json:"decision"`
	}
	decode := func(b []byte) (event, bool) {
		var ev event
		return ev, json.Unmarshal(b, &ev) == nil && ev.ID != ""
	}
	read := func() []event {
		var evs []event
		require.NoError(t, kafka.ReadLog(ctx, kafka.Config{Brokers: strings.Split(ep.Kafka, ",")}, ep.Topics["deposits"],
			kafka.LogOptions{ClientID: "e2e-deposits", Unverified: true}, func(r *kafka.Record) error {
				if ev, ok := decode(r.Value); ok {
					evs = append(evs, ev)
				}
				return nil
			}))
		return evs
	}
	deadline := time.Now().Add(90 * time.Second)
	var heldID string
	for {
		credited := 0
		latest := map[string]event{}
		for _, ev := range read() {
			latest[ev.ID] = ev
			if ev.Status == "credited" {
				credited++
				require.Positive(t, ev.Credits)
			}
		}
		for id, ev := range latest {
			if ev.Status == "held" && strings.Contains(strings.Join(ev.Reasons, " "), "dev-partner") {
				heldID = id
			}
		}
		if credited > 0 && heldID != "" {
			break
		}
		require.True(t, time.Now().Before(deadline), "deposits: %d credited, held by the dev feed: %q", credited, heldID)
		time.Sleep(time.Second)
	}

	// kcat, a client no one here wrote, reads the topic read_committed
	// too (it never sees the end of a transactional topic, whose last
	// offsets are transaction markers: it reads for a while); the test's
	// own reads take ReadLog to the committed end, which a busy broker
	// cannot cut short.
	kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
	kout, _ := exec.CommandContext(kctx, kcat, "-C", "-b", ep.Kafka, "-t", "cordon.deposits", "-o", "beginning", "-q",
		"-X", "isolation.level=read_committed").Output()
	kcancel()
	byKcat := 0
	for _, l := range strings.Split(string(kout), "\n") {
		if _, ok := decode([]byte(l)); ok {
			byKcat++
		}
	}
	require.Positive(t, byKcat, "kcat read no deposit events")
	// GET /v1/deposits lists it (held is the default).
	deadline2 := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, ep.API.URL+"/v1/deposits?id="+url.QueryEscape(heldID), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+ep.API.Tokens["ledger"])
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			require.Contains(t, string(b), `"status":"held"`)
			break
		}
		require.True(t, time.Now().Before(deadline2), "GET /v1/deposits: %d %s", resp.StatusCode, b)
		time.Sleep(500 * time.Millisecond)
	}
	// heldContent is the held deposit's content as the API shows it now.
	heldContent := func() string {
		req, err := http.NewRequest(http.MethodGet, ep.API.URL+"/v1/deposits?id="+url.QueryEscape(heldID), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+ep.API.OperatorToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var r credit.DepositsResponse
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Deposits) != 1 {
			return ""
		}
		return r.Deposits[0].Content
	}

	// An operator releases it through the API; the integration tokens may not.
	decide := func(token string) (int, string) {
		body := `{"deposit":"` + heldID + `","action":"release","reason":"dev e2e: checked"}`
		req, err := http.NewRequest(http.MethodPost, ep.API.URL+"/v1/decisions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := decide(ep.API.Tokens["ledger"])
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, `"missing_scope":"decide"`)
	// The operator's CLI shows the deposit and binds the decision to its
	// content.
	require.ErrorContains(t, cmdDeposits(ctx, []string{"release", heldID, "--reason", "dev e2e: checked", "--data-dir", dir}), "--content is required")
	require.Error(t, cmdDeposits(ctx, []string{"release", heldID, "--content", "0123", "--reason", "dev e2e: checked", "--data-dir", dir}),
		"a decision on content the operator did not see")
	// The dev chain reorganizes now and then: a deposit dropped or mined
	// again at that moment is looked at again.
	for attempt := 0; ; attempt++ {
		err := cmdDeposits(ctx, []string{"release", heldID, "--content", heldContent(), "--reason", "dev e2e: checked", "--data-dir", dir})
		if err == nil {
			break
		}
		require.Less(t, attempt, 10, "release: %v", err)
		time.Sleep(time.Second)
	}
	// Its own deadline: under -race, with every role of the dev in one
	// process on two cores, the first wait may have used most of its own.
	// A decision binds to the content the operator saw: one that a reorg
	// changed in between (the deposit dropped and mined again) is
	// refused, and the operator decides again on what is there now.
	releaseDeadline, decided := time.Now().Add(5*time.Minute), time.Now()
	for {
		released := false
		var history []string
		for _, ev := range read() {
			if ev.ID == heldID {
				history = append(history, ev.Status)
			}
			if ev.ID == heldID && (ev.Status == "released" || ev.Status == "credited") && ev.Decision != nil {
				require.Equal(t, ep.API.Operator, ev.Decision.Operator)
				released = true
			}
		}
		if released {
			break
		}
		if !time.Now().Before(releaseDeadline) {
			var about []string
			_ = kafka.ReadLog(ctx, kafka.Config{Brokers: strings.Split(ep.Kafka, ",")}, ep.Topics["alerts"], kafka.LogOptions{ClientID: "e2e"},
				func(r *kafka.Record) error {
					if strings.Contains(string(r.Value), heldID) && !strings.Contains(string(r.Value), `"rule"`) {
						about = append(about, string(r.Value))
					}
					return nil
				})
			t.Fatalf("the released deposit %s has no released event; its events: %v; alerts about it: %v", heldID, history, about)
		}
		if time.Since(decided) > 20*time.Second {
			if c := heldContent(); c != "" {
				_ = cmdDeposits(ctx, []string{"release", heldID, "--content", c, "--reason", "dev e2e: checked again", "--data-dir", dir})
			}
			decided = time.Now()
		}
		time.Sleep(3 * time.Second) // each read is the whole topic: the broker serves crediting too
	}

	// cordon deposits list shows the held ones; cordon deposits reject
	// decides on one of them (the operator token from endpoints.json).
	var buf bytes.Buffer
	require.NoError(t, cmdDepositsList(ctx, []string{"--data-dir", dir, "--status", "held", "--format", "json"}, &buf))
	var other, otherContent string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev event
		require.NoError(t, json.Unmarshal([]byte(l), &ev), l)
		require.Equal(t, "held", ev.Status)
		if ev.ID != heldID {
			other, otherContent = ev.ID, ev.Content
		}
	}
	require.NotEmpty(t, other, "another held deposit: %s", buf.String())
	require.NotEmpty(t, otherContent, "deposits list shows the content a decision names")
	require.NoError(t, cmdDeposits(ctx, []string{"reject", other, "--content", otherContent, "--reason", "dev e2e: stolen funds", "--data-dir", dir}))
	require.ErrorContains(t, cmdDeposits(ctx, []string{"reject", other, "--data-dir", dir}), "--reason is required")
	// Crediting confirms every pending deposit with the node before a
	// round commits: under -race, with the whole test suite beside it on
	// two cores, a round can take minutes.
	rejectDeadline := time.Now().Add(5 * time.Minute)
	for {
		for _, ev := range read() {
			if ev.ID == other && ev.Status == "rejected" {
				require.Equal(t, ep.API.Operator, ev.Decision.Operator)
				return
			}
		}
		if time.Now().After(rejectDeadline) {
			// Why not: the alerts about it (a refused decision says why).
			var about []string
			_ = kafka.ReadLog(ctx, kafka.Config{Brokers: strings.Split(ep.Kafka, ",")}, ep.Topics["alerts"], kafka.LogOptions{ClientID: "e2e"},
				func(r *kafka.Record) error {
					if strings.Contains(string(r.Value), other) {
						about = append(about, string(r.Value))
					}
					return nil
				})
			t.Fatalf("the rejected deposit %s has no rejected event; alerts about it: %v", other, about)
		}
		time.Sleep(3 * time.Second) // each read is the whole topic: the broker serves crediting too
	}
}

// checkDevRetroHunt: an address registered through POST /v1/addresses
// (a bad row next to it is reported, not blocking) reaches ClickHouse;
// listing an address that paid it earlier raises a retro_hunt alert.
func checkDevRetroHunt(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	client, err := exec.LookPath("clickhouse-client")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ep.ClickHouse)
	require.NoError(t, err)
	query := func(q string) string {
		out, err := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", "cordon", "-q", q).CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	pair := strings.Fields(query(`SELECT from_address, to_address FROM canonical_transfers WHERE chain = 'eth' AND from_address != to_address
		AND from_address != '0x0000000000000000000000000000000000000000' GROUP BY from_address, to_address ORDER BY count() DESC, from_address LIMIT 1`))
	require.Len(t, pair, 2)
	thief, ours := pair[0], pair[1]

	// The address may be one of the dev users' already (cordon.addresses
	// says): then the registrar sends it as it is (an identical re-send),
	// else as user-42.
	kcat, err := exec.LookPath("kcat")
	require.NoError(t, err)
	out, err := exec.Command(kcat, "-C", "-b", ep.Kafka, "-t", ep.Topics["addresses"], "-o", "beginning", "-e", "-q").Output()
	require.NoError(t, err)
	account := "user-42"
	for _, l := range strings.Split(string(out), "\n") {
		var e registry.Entry
		if json.Unmarshal([]byte(l), &e) == nil && e.Chain == chain.ETH && e.Address == ours {
			if account = e.Account; e.Removed {
				account = "user-42"
			}
		}
	}
	register := func(token, entries string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.API.URL+"/v1/addresses", strings.NewReader(`{"addresses":[`+entries+`]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	entry := func(acct string) string {
		return `{"chain":"eth","network":"devnet","address":"` + ours + `","account":"` + acct + `","kind":"deposit"}`
	}
	code, b := register(ep.API.Tokens["screening"], entry(account))
	require.Equal(t, http.StatusForbidden, code, "the screening token does not register: %s", b)
	code, b = register(ep.API.Tokens["registrar"], entry(account)+`,{"chain":"eth","network":"devnet","address":"0x1234","account":"user-43"}`)
	require.Equal(t, http.StatusOK, code, b)
	require.Contains(t, b, `"row":1`)
	require.Contains(t, b, `"account":"`+account+`"`)
	code, b = register(ep.API.Tokens["registrar"], entry("attacker"))
	require.Equal(t, http.StatusConflict, code, "the registrar does not redirect a registered address: %s", b)
	require.Contains(t, b, `"fields":["account"]`)
	deadline := time.Now().Add(60 * time.Second)
	for query(`SELECT count() FROM registered_addresses FINAL WHERE address = '`+ours+`' AND removed = 0`) != "1" {
		require.True(t, time.Now().Before(deadline), "registered address not in ClickHouse")
		time.Sleep(200 * time.Millisecond)
	}

	csv := filepath.Join(dir, "thief.csv")
	require.NoError(t, os.WriteFile(csv, []byte("address,chain,category,confidence\n"+thief+",eth,hack,88\n"), 0o600))
	require.NoError(t, cmdIntel(ctx, []string{"import", "--data-dir", dir, "--format", "csv", "--source", "partner-y", csv}))
	deadline = time.Now().Add(90 * time.Second)
	for {
		out, _ := exec.Command(kcat, "-C", "-b", ep.Kafka, "-t", ep.Topics["alerts"], "-o", "beginning", "-e", "-q").Output()
		for _, l := range strings.Split(string(out), "\n") {
			// The dev feed's own listings raise retro-hunt alerts too; this
			// one is partner-y's, for the pair.
			if strings.Contains(l, `"type":"retro_hunt"`) && strings.Contains(l, `"source":"partner-y"`) &&
				strings.Contains(l, thief) && strings.Contains(l, ours) {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "no retro_hunt alert for %s → %s", thief, ours)
		time.Sleep(time.Second)
	}
}

// checkDevIntel: the dev feed is imported at start and the screening API
// (token from endpoints.json) flags its theft address; `cordon intel
// import` loads a real OFAC list and `check` finds one of its addresses.
func checkDevIntel(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	require.NotNil(t, ep.API)
	post := func(token, body string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.API.URL+"/v1/screen", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	flagged := devnet.Keys("cordon-dev", 32)[30]
	addr := strings.ToLower(crypto.PubkeyToAddress(flagged.PublicKey).Hex())
	body := `{"addresses":[{"chain":"eth","network":"devnet","address":"` + addr + `"}]}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, resp := post(ep.API.Token, body)
		if code == http.StatusOK && strings.Contains(resp, `"verdict":"flagged"`) {
			// The listing is TLP:AMBER: the screening token gets the
			// verdict and the category, the operator the details.
			require.Contains(t, resp, `"category":"hack"`)
			require.Contains(t, resp, `"withheld":[{"category":"hack","tlp":"amber"}]`)
			require.NotContains(t, resp, "dev-partner")
			code, resp = post(ep.API.OperatorToken, body)
			require.Equal(t, http.StatusOK, code, resp)
			require.Contains(t, resp, `"source":"dev-partner"`)
			break
		}
		require.True(t, time.Now().Before(deadline), "dev feed address not flagged: %d %s", code, resp)
		time.Sleep(200 * time.Millisecond)
	}
	code, _ := post("not-the-token-0000000", body)
	require.Equal(t, http.StatusUnauthorized, code)

	list := filepath.Join("..", "..", "intel", "testdata", "ofac", "sanctioned_addresses_XBT.txt")
	require.NoError(t, cmdIntel(ctx, []string{"import", "--data-dir", dir, "--format", "ofac", list}))
	require.NoError(t, cmdIntel(ctx, []string{"import", "--data-dir", dir, "--format", "ofac", list}), "twice: nothing changes")
	require.NoError(t, cmdIntel(ctx, []string{"check", "--data-dir", dir, "--chain", "btc", "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX"}))
	require.NoError(t, cmdIntel(ctx, []string{"import", "--data-dir", dir, "--format", "misp", filepath.Join("..", "..", "intel", "testdata", "misp")}))
	require.NoError(t, cmdIntel(ctx, []string{"stats", "--data-dir", dir}))
	require.ErrorContains(t, cmdIntel(ctx, []string{"import", "--data-dir", dir, "--format", "csv", list}), "--source is required")
	code, resp := post(ep.API.Token, `{"addresses":[{"chain":"btc","address":"123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX"}]}`)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, resp, `"category":"sanctions"`, "the running instance follows the topic")
}

// checkDevAnalysts: `cordon reconcile` finds no mismatch on either chain
// of the running dev system and reports a tampered row; `cordon trace`
// follows a dev address and writes every format.
func checkDevAnalysts(t testing.TB, ctx context.Context, dir string, ep endpoints) {
	// The devnet keeps about 128 blocks of state: reconcile compares
	// balances there, so the loader must be that close to the chain's
	// head. Under -race, with every role of the dev in one process on
	// two cores, it may trail further for a while.
	waitLoaderNear(t, ep, 60, 2*time.Minute)
	for _, c := range []string{"eth", "btc"} {
		require.NoError(t, cmdReconcile(ctx, []string{"--chain", c, "--data-dir", dir, "--blocks", "20"}), c)
	}
	client, err := exec.LookPath("clickhouse-client")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ep.ClickHouse)
	require.NoError(t, err)
	query := func(q string) string {
		out, err := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", "cordon", "-q", q).CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	from := query(`SELECT from_address FROM canonical_transfers WHERE asset = 'native' GROUP BY from_address ORDER BY count() DESC LIMIT 1`)
	for _, format := range []string{"table", "json", "dot", "html"} {
		out := filepath.Join(dir, "trace."+format)
		require.NoError(t, cmdTrace(ctx, []string{"--chain", "eth", "--data-dir", dir, "--address", from, "--hops", "2", "--format", format, "--out", out}))
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Contains(t, string(b), from, format)
	}
	b, err := os.ReadFile(filepath.Join(dir, "trace.json"))
	require.NoError(t, err)
	var res struct {
		Edges []struct{ From, To string } `json:"edges"`
	}
	require.NoError(t, json.Unmarshal(b, &res))
	require.NotEmpty(t, res.Edges)
	require.Equal(t, from, res.Edges[0].From)

	// A tampered ETH transfer amount in a recent block is reported. The
	// block is a few below the tip: the dev chain reorganizes its newest
	// blocks now and then.
	tip := query(`SELECT max(block_number) FROM canonical_transfers WHERE chain = 'eth' AND asset = 'native' AND from_address != to_address
		AND block_number + 8 <= (SELECT max(height) FROM canonical_blocks WHERE chain = 'eth')`)
	query(`INSERT INTO transfers (chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index, asset, standard,
		from_address, to_address, amount, token_id)
		SELECT chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index, asset, standard, from_address, to_address,
			concat(amount, '0'), token_id
		FROM canonical_transfers WHERE chain = 'eth' AND asset = 'native' AND from_address != to_address AND block_number = ` + tip + ` LIMIT 1`)
	err = cmdReconcile(ctx, []string{"--chain", "eth", "--data-dir", dir, "--blocks", "30", "--sample", "0"})
	require.ErrorIs(t, err, errMismatch)
}

// waitLoaderNear waits until ClickHouse's canonical Ethereum blocks reach
// within near blocks of the devnet's head.
func waitLoaderNear(t testing.TB, ep endpoints, near uint64, within time.Duration) {
	client, err := exec.LookPath("clickhouse-client")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ep.ClickHouse)
	require.NoError(t, err)
	deadline := time.Now().Add(within)
	for {
		out, err := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", "cordon", "-q",
			"SELECT max(height) FROM canonical_blocks WHERE chain = 'eth'").CombinedOutput()
		require.NoError(t, err, string(out))
		loaded, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
		require.NoError(t, err)
		resp, err := http.Post(ep.ETHRPC, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
		require.NoError(t, err)
		var head struct{ Result string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&head))
		resp.Body.Close()
		tip, err := strconv.ParseUint(strings.TrimPrefix(head.Result, "0x"), 16, 64)
		require.NoError(t, err)
		if loaded+near >= tip {
			return
		}
		require.True(t, time.Now().Before(deadline), "the ClickHouse loader trails the devnet: block %d loaded, head %d", loaded, tip)
		time.Sleep(time.Second)
	}
}

// checkDevClickHouse: the dev ClickHouse server is in endpoints.json and
// clickhouse-client (a third-party client) reads canonical rows of both
// chains from it.
func checkDevClickHouse(t testing.TB, ep endpoints) {
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			t.Fatal("clickhouse-client is not installed (make test installs it)")
		}
		t.Skip("clickhouse-client not installed")
	}
	require.NotEmpty(t, ep.ClickHouse, "endpoints.json has no clickhouse")
	_, port, err := net.SplitHostPort(ep.ClickHouse)
	require.NoError(t, err)
	query := func(q string) string {
		out, err := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", "cordon", "-q", q).CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := query(`SELECT countIf(chain = 'eth') > 0 AND countIf(chain = 'btc') > 0 FROM canonical_blocks`)
		if got == "1" && query(`SELECT count() > 0 FROM canonical_outputs`) == "1" && query(`SELECT count() > 0 FROM canonical_transfers`) == "1" {
			return
		}
		require.True(t, time.Now().Before(deadline), "no canonical rows of both chains in ClickHouse")
		time.Sleep(500 * time.Millisecond)
	}
}

// checkDevBitcoin: the dev btcd node is in endpoints.json, its outputs
// reach Kafka (read with kcat), and `cordon export --chain btc` with no
// endpoint flags writes outputs and spends.
func checkDevBitcoin(t testing.TB, ctx context.Context, dir string, ep endpoints, kcat string) {
	require.NotNil(t, ep.BTCRPC, "endpoints.json has no btc_rpc")
	require.Equal(t, devBTCNetwork, ep.BTCRPC.Network)
	require.NotEmpty(t, ep.BTCRPC.Password)
	// The wallet pays during the first blocks after bootstrap (height 450);
	// on a loaded machine (make test runs packages side by side) that can
	// take a while.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, metrics := httpGet(t, "http://"+ep.HTTP+"/metrics")
		if strings.Contains(metrics, `cordon_kafka_messages_total{topic="cordon.spends"}`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "no bitcoin spend reached kafka")
		time.Sleep(200 * time.Millisecond)
	}
	if kcat != "" {
		out, err := exec.Command(kcat, "-C", "-b", ep.Kafka, "-t", ep.Topics["outputs"], "-o", "beginning", "-c", "5", "-q",
			"-f", "%k\t%s\n").Output()
		require.NoError(t, err)
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			key, val, ok := strings.Cut(l, "\t")
			require.True(t, ok, l)
			part, err := kafka.DecodePart([]byte(val))
			require.NoError(t, err)
			require.Equal(t, part.Key(), key)
			outs, err := kafka.Items[chain.Output](part)
			require.NoError(t, err)
			for _, o := range outs {
				require.Equal(t, chain.BTC, o.Chain)
				require.NotEmpty(t, o.TxHash)
				require.NotEmpty(t, o.ScriptType)
			}
		}
	}
	out := filepath.Join(dir, "btc.jsonl")
	require.NoError(t, cmdExport(ctx, []string{"--chain", "btc", "--data-dir", dir, "--from", "440", "--to", "450", "--out", out}))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	types := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		types[line["type"].(string)]++
		if line["type"] == "output" {
			for _, k := range []string{"chain", "tx_hash", "vout", "address", "script_type", "amount", "coinbase", "block_number", "block_hash"} {
				require.Contains(t, line, k)
			}
		}
	}
	require.Equal(t, 11, types["block"])
	require.Positive(t, types["output"])
}

// TestRunFromConfig runs `cordon run` from a YAML file against a devnet
// and an embedded broker.
func TestRunFromConfig(t *testing.T) {
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(context.Background(), dev, devnet.TrafficConfig{}, nil)
	require.NoError(t, err)
	for range 5 {
		require.NoError(t, tr.Step(context.Background(), 5))
	}
	// A Bitcoin node, paid and spent by its wallet.
	addr, err := btcnode.MiningAddress("regtest", "run")
	require.NoError(t, err)
	node := btctest.Node(t, "regtest", addr)
	wallet, err := btcnode.NewWallet(node, "regtest", "run", 1)
	require.NoError(t, err)
	require.NoError(t, wallet.Bootstrap())
	for range 3 {
		require.NoError(t, wallet.Step(3))
	}
	brokers := kafkatest.Brokers(t)
	cfgPath := filepath.Join(t.TempDir(), "cordon.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(testKeys(t)+fmt.Sprintf(`
log: {level: warn}
http: {listen: "127.0.0.1:0"}
kafka:
  brokers: [%s]
  partitions: 2
  replication_factor: 1
chains:
  eth:
    - network: devnet
      chain_id: %d
      start_height: "0"
      endpoints:
        - {name: dev, url: "env:CORDON_TEST_ETH_URL"}
  btc:
    - network: regtest
      start_height: "100"
      endpoints:
        - {name: btcd, url: "%s", user: %s, password: "env:CORDON_TEST_BTC_PASS"}
`, brokers[0], devnet.ChainID, node.URL, node.User())), 0o600))
	t.Setenv("CORDON_TEST_ETH_URL", dev.HTTPURL())
	t.Setenv("CORDON_TEST_BTC_PASS", node.Password())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmdRun(ctx, []string{"--config", cfgPath}) }()

	// What run published must be the chain that export reads.
	out := filepath.Join(t.TempDir(), "b.csv")
	require.NoError(t, cmdExport(ctx, []string{"--chain", "eth", "--rpc", dev.HTTPURL(), "--from", "0", "--to", "5", "--format", "csv", "--records", "block", "--out", out}))
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, export.BlockColumns, rows[0])
	require.Len(t, rows, 7)
	require.Equal(t, "devnet", rows[1][1], "network derived from chain id 1337")

	reader, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, nil, nil)
	require.NoError(t, err)
	defer reader.Close()
	var cp chain.Checkpoint
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err = reader.Checkpoint(ctx, chain.ETH, "devnet", 100)
		require.NoError(t, err)
		if tip, ok := cp.Tip(); ok && tip.Height >= 5 {
			break
		}
		require.True(t, time.Now().Before(deadline), "cordon run published nothing")
		time.Sleep(100 * time.Millisecond)
	}
	for i, row := range rows[1:] {
		require.Equal(t, row[3], cp.Tail[i].Hash, "height %d", i)
	}

	// Bitcoin: the published stream is the node's chain from height 100,
	// and export reads the same blocks with user and password flags.
	tipHeight, err := node.Client().GetBlockCount()
	require.NoError(t, err)
	deadline = time.Now().Add(30 * time.Second)
	for {
		cp, err = reader.Checkpoint(ctx, chain.BTC, "regtest", 100)
		require.NoError(t, err)
		if tip, ok := cp.Tip(); ok && tip.Height >= uint64(tipHeight) {
			break
		}
		require.True(t, time.Now().Before(deadline), "cordon run published no bitcoin blocks")
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, uint64(100), cp.Tail[0].Height)
	for _, h := range cp.Tail {
		hash, err := node.Client().GetBlockHash(int64(h.Height))
		require.NoError(t, err)
		require.Equal(t, hash.String(), h.Hash)
	}
	outCSV := filepath.Join(t.TempDir(), "outputs.csv")
	require.NoError(t, cmdExport(ctx, []string{"--chain", "btc", "--network", "regtest", "--rpc", node.URL, "--rpc-user", node.User(),
		"--rpc-pass", "env:CORDON_TEST_BTC_PASS", "--from", "100", "--to", fmt.Sprint(tipHeight), "--format", "csv", "--out", outCSV}))
	raw, err = os.ReadFile(outCSV)
	require.NoError(t, err)
	rows, err = csv.NewReader(bytes.NewReader(raw)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, export.OutputColumns, rows[0])
	require.Greater(t, len(rows), 20)
	err = cmdExport(ctx, []string{"--chain", "btc", "--rpc", node.URL, "--from", "1", "--to", "2"})
	require.ErrorContains(t, err, "--network is required")
	err = cmdExport(ctx, []string{"--chain", "btc", "--network", "regtest", "--rpc", node.URL, "--from", "1", "--to", "2"})
	require.ErrorContains(t, err, "no credentials")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestExportErrors(t *testing.T) {
	ctx := context.Background()
	err := cmdExport(ctx, []string{"--chain", "doge", "--to", "1"})
	require.ErrorContains(t, err, `--chain "doge"`)
	err = cmdExport(ctx, []string{"--chain", "eth", "--from", "5", "--to", "1", "--rpc", "http://127.0.0.1:1"})
	require.ErrorContains(t, err, "--to 1 is below --from 5")
	err = cmdExport(ctx, []string{"--chain", "eth", "--to", "1", "--format", "csv", "--records", "block,transfer", "--rpc", "http://127.0.0.1:1"})
	require.ErrorContains(t, err, "csv holds one record type per file")
	err = cmdExport(ctx, []string{"--chain", "eth", "--to", "1", "--data-dir", t.TempDir()})
	require.ErrorContains(t, err, "make run")
	err = cmdRun(ctx, nil)
	require.ErrorContains(t, err, "--config FILE is required")
}

// checkDevIndicatorsInClickHouse: the loader copies the indicator topic
// into ClickHouse, where analysts join it with transfers.
func checkDevIndicatorsInClickHouse(t testing.TB, ep endpoints) {
	client, err := exec.LookPath("clickhouse-client")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ep.ClickHouse)
	require.NoError(t, err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", "cordon", "-q",
			`SELECT countIf(source = 'ofac'), countIf(source = 'dev-partner' AND category = 'hack') FROM active_indicators`).CombinedOutput()
		require.NoError(t, err, string(out))
		if strings.TrimSpace(string(out)) == "434\t1" {
			return
		}
		require.True(t, time.Now().Before(deadline), "indicators not in ClickHouse: %s", out)
		time.Sleep(500 * time.Millisecond)
	}
}
