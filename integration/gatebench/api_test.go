package gatebench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/audit"
	"github.com/cordonhq/cordon/signer/gate"
)

const exchangeToken = "bench-exchange-token-0123456789"

// BenchmarkGateAPI is issue 14's second target: POST /v1/withdrawals
// over loopback TCP, measured to the 202. A gate.Service leads on kfake
// (in this process, record signing on, topics created), with the audit
// log (checkpoints every 1,000 records), metrics, and a core over
// loadWorld's world as cmd builds it; its API is on an httptest server
// (a real loopback listener). CORDON_BENCH_CLIENTS (default "64,256")
// lists the numbers of concurrent keep-alive clients, one sub-benchmark
// each, every one with a fresh broker and gate; each POSTs distinct
// withdrawals (new ids, the world's accounts, 0.001 to 1 ETH: the
// default policy's first tier, so each is pending for approval; half to
// a destination the account used, half to a new one) for
// CORDON_BENCH_SECONDS (default 10) seconds after a 2-second warm-up.
// The clients share the process and the 2 vCPUs with the gate and the
// broker.
func BenchmarkGateAPI(b *testing.B) {
	w := loadWorld(b)
	list := "64,256"
	if v := strings.TrimSpace(os.Getenv("CORDON_BENCH_CLIENTS")); v != "" {
		list = v
	}
	secs := envInt("CORDON_BENCH_SECONDS", 10)
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		require.NoError(b, err, "CORDON_BENCH_CLIENTS")
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchAPI(b, w, n, time.Duration(secs)*time.Second) })
	}
}

type commits struct {
	mu          sync.Mutex
	n, ws, recs int
}

func benchAPI(b *testing.B, w *world, clients int, dur time.Duration) {
	kc := kafka.Config{Brokers: kafkatest.Brokers(b), Auth: kafkatest.Keys(), CreateTopics: true}
	kc.Topics.Fill()
	chn, err := audit.New(audit.Config{}, audit.KeyOf(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))), clock.Real{})
	require.NoError(b, err)
	var cm commits
	reg := prometheus.NewRegistry()
	svc, err := gate.NewService(gate.ServiceConfig{Kafka: kc, Clock: clock.Real{}, Metrics: gate.NewMetrics(reg),
		Audit:   &gate.ChainAuditor{Chain: chn, Topic: kc.Topics.Audit},
		NewCore: func() (*gate.Core, error) { return w.core(b, w.risk), nil },
		Committed: func(ch gate.Changes) {
			cm.mu.Lock()
			cm.n++
			cm.ws += len(ch.Withdrawals)
			cm.recs += len(ch.Entries)
			cm.mu.Unlock()
		}})
	require.NoError(b, err)
	auth, err := apiauth.New([]apiauth.Token{{Name: "exchange", Token: config.SecretValue(exchangeToken), Scopes: []string{"withdraw"}}}, nil, apiauth.Options{})
	require.NoError(b, err)
	mux := http.NewServeMux()
	(&gate.API{Auth: auth, Service: svc, Assets: w.assets}).Handle(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); require.NoError(b, <-done) }()
	require.Eventually(b, svc.Leader, 30*time.Second, 10*time.Millisecond, "the gate leads")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	var (
		measuring atomic.Bool
		accepted  atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		wg        sync.WaitGroup
		statuses  = map[string]int{}
	)
	runCtx, stop := context.WithCancel(context.Background())
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 11))
			var mine []time.Duration
			for i := 0; runCtx.Err() == nil; i++ {
				body := w.body(rng, fmt.Sprintf("api-%d-%d-%d", clients, c, i), mixed{})
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+gate.WithdrawalsEndpoint, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+exchangeToken)
				on := measuring.Load()
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d: %s", resp.StatusCode, out)
					return
				}
				if on && measuring.Load() {
					mine = append(mine, d)
					accepted.Add(1)
					var acc gate.Accepted
					_ = json.Unmarshal(out, &acc)
					mu.Lock()
					statuses[acc.Status+"/"+acc.Rule]++
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(2 * time.Second) // warm-up: connections, the broker's topics, the first batches
	cm.mu.Lock()
	cm.n, cm.ws, cm.recs = 0, 0, 0
	cm.mu.Unlock()
	commit0, commits0 := commitTime(b, reg)
	b.ResetTimer()
	measuring.Store(true)
	start := time.Now()
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	b.StopTimer()
	cm.mu.Lock()
	batches, ws, entries := cm.n, cm.ws, cm.recs
	cm.mu.Unlock()
	commit1, commits1 := commitTime(b, reg)
	commitMean := time.Duration(float64(time.Second) * (commit1 - commit0) / max(commits1-commits0, 1))
	stop()
	wg.Wait()
	if len(lat) == 0 {
		b.Fatal("no withdrawal was accepted")
	}
	rate := float64(accepted.Load()) / elapsed.Seconds()
	b.ReportMetric(rate, "withdrawals/s")
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ws)/float64(max(batches, 1)), "withdrawals/batch")
	b.ReportMetric(float64(commitMean.Microseconds())/1000, "commit-ms")
	w.logLoad(b)
	b.Logf("%d clients, %s: %d accepted (%.0f/s), statuses %v; latency p50 %s, p90 %s, p99 %s, max %s; %d batches committed (%.1f/s), %.1f withdrawals and %.1f audit entries per batch, commit (records, signing, Kafka transaction) %s per batch on average",
		clients, elapsed.Round(time.Millisecond), accepted.Load(), rate, statuses, percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99), percentile(lat, 1),
		batches, float64(batches)/elapsed.Seconds(), float64(ws)/float64(max(batches, 1)), float64(entries)/float64(max(batches, 1)), commitMean)
}

// commitTime is the sum (seconds) and count of cordon_gate_commit_seconds.
func commitTime(tb testing.TB, reg *prometheus.Registry) (float64, float64) {
	mfs, err := reg.Gather()
	require.NoError(tb, err)
	for _, mf := range mfs {
		if mf.GetName() == "cordon_gate_commit_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum(), float64(h.GetSampleCount())
		}
	}
	return 0, 0
}
