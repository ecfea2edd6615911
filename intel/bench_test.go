package intel

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
)

func TestMain(m *testing.M) {
	if testkit.ChildMode() == "kafka" {
		kafkatest.Serve()
		return
	}
	os.Exit(m.Run())
}

func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("CORDON_BENCH_INDICATORS")); err == nil && v > 0 {
		return v
	}
	return def
}

// benchIndicator is indicator i: an Ethereum address, one of 8 sources
// and 6 categories, some with an expiry.
func benchIndicator(i int) Indicator {
	v := fmt.Sprintf("0x%040x", uint64(i)*0x9e3779b97f4a7c15)
	in := Indicator{Kind: KindAddress, Chain: chain.ETH, Network: "mainnet", Value: v, Source: "source-" + strconv.Itoa(i%8), Feed: "feed-" + strconv.Itoa(i%8),
		Category:   []string{CategorySanctions, CategoryHack, CategoryMixer, CategoryPhishing, CategoryScam, CategoryRansomware}[i%6],
		Confidence: i % 101, TLP: TLPAmber, ValidFrom: time.Unix(1_600_000_000, 0), Created: time.Unix(1_600_000_000, 0), Modified: time.Unix(1_600_000_000, 0)}
	if i%10 == 0 {
		in.ValidUntil = time.Unix(1_900_000_000, 0)
	}
	in.ID = ID(in.Source, in.Chain, in.Kind, in.Value)
	return in
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// BenchmarkIndex loads CORDON_BENCH_INDICATORS indicators (default
// 10,000,000) into the index and into a plain map[string]Indicator (the
// reference), and reports bytes per indicator of each and the latency of
// single lookups (half hits, half misses) from the index.
func BenchmarkIndex(b *testing.B) {
	n := benchN(10_000_000)
	base := heap()
	x := NewIndex()
	start := time.Now()
	for i := range n {
		in := benchIndicator(i)
		x.Put(&in)
	}
	load := time.Since(start)
	idxBytes := heap() - base
	b.Logf("index: %d indicators loaded in %s, %.1f bytes per indicator", n, load.Round(time.Millisecond), float64(idxBytes)/float64(n))

	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1_700_000_000, 0)
	const lookups = 1_000_000
	values := make([]string, lookups)
	for i := range values {
		j := rng.IntN(n)
		if i%2 == 1 {
			j += n // a miss
		}
		values[i] = fmt.Sprintf("0x%040x", uint64(j)*0x9e3779b97f4a7c15)
	}
	lat := make([]time.Duration, lookups)
	hits := 0
	dst := make([]Match, 0, 4)
	for i, v := range values {
		t0 := time.Now()
		dst = x.Lookup(dst[:0], chain.ETH, KindAddress, v, now)
		lat[i] = time.Since(t0)
		if len(dst) > 0 {
			hits++
		}
	}
	b.Logf("index lookups: %d (%d hits): p50 %s, p99 %s, p99.9 %s, max %s", lookups, hits,
		percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 0.999), percentile(lat, 1))
	b.ReportMetric(float64(idxBytes)/float64(n), "index-B/indicator")
	b.ReportMetric(float64(percentile(lat, 0.99).Nanoseconds()), "lookup-p99-ns")
	runtime.KeepAlive(x)
	x = nil

	// The reference: every indicator in a map by value.
	base = heap()
	ref := make(map[string]Indicator)
	for i := range n {
		in := benchIndicator(i)
		ref[in.Value] = in
	}
	refBytes := heap() - base
	for i, v := range values {
		t0 := time.Now()
		_, ok := ref[v]
		lat[i] = time.Since(t0)
		_ = ok
	}
	b.Logf("map[string]Indicator: %.1f bytes per indicator; lookups p50 %s, p99 %s", float64(refBytes)/float64(n),
		percentile(lat, 0.5), percentile(lat, 0.99))
	b.ReportMetric(float64(refBytes)/float64(n), "map-B/indicator")
	runtime.KeepAlive(ref)
}

// BenchmarkScreenAPI drives POST /v1/screen over loopback TCP with
// single-address requests from 64 concurrent clients for 10 s, against
// an index of 1,000,000 indicators, and reports addresses/s and latency.
func BenchmarkScreenAPI(b *testing.B) {
	n := benchN(1_000_000)
	st := &Store{Index: NewIndex()}
	for i := range n {
		in := benchIndicator(i)
		st.Index.Put(&in)
	}
	st.ready.Store(true)
	const token = "bench-token-0123456789"
	auth, err := apiauth.New([]apiauth.Token{{Name: "bench", Token: config.SecretValue(token), Scopes: []string{"screen"}}}, nil, apiauth.Options{})
	require.NoError(b, err)
	srv := httptest.NewServer(NewScreenHandler(APIConfig{}, auth, st, nil))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	client := &http.Client{Transport: tr}
	const workers = 64
	dur := 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var done, flagged atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []time.Duration
			for ctx.Err() == nil {
				j := rng.IntN(2 * n)
				body := fmt.Appendf(nil, `{"addresses":[{"chain":"eth","address":"0x%040x"}]}`, uint64(j)*0x9e3779b97f4a7c15)
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/screen", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(resp.Body)
				_ = resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d: %s", resp.StatusCode, buf.String())
					return
				}
				done.Add(1)
				if bytes.Contains(buf.Bytes(), []byte(`"flagged"`)) {
					flagged.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rate := float64(done.Load()) / dur.Seconds()
	b.Logf("POST /v1/screen, 1 address per request, %d clients, %s: %d requests (%d flagged), %.0f addresses/s; latency p50 %s, p99 %s, max %s",
		workers, dur, done.Load(), flagged.Load(), rate, percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1))
	b.ReportMetric(rate, "addresses/s")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkImportSTIX builds a STIX 2.1 bundle of CORDON_BENCH_INDICATORS
// indicators (default 1,000,000; Ethereum and Bitcoin wallets, TLP
// markings, confidence, labels), then imports it end to end — parse,
// validate, diff against the topic, publish in one transaction to a
// broker in a helper process — and reports the time of each step.
func BenchmarkImportSTIX(b *testing.B) {
	n := benchN(1_000_000)
	var buf bytes.Buffer
	buf.WriteString(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":[`)
	buf.WriteString(`{"type":"identity","spec_version":"2.1","id":"identity--00000000-0000-4000-8000-000000000001","name":"bench isac","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"}`)
	btcVals := []string{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"}
	for i := range n {
		v := fmt.Sprintf("0x%040x", uint64(i)*0x9e3779b97f4a7c15)
		if i%100 == 0 {
			v = btcVals[(i/100)%2] // a few Bitcoin wallets (repeated values: one indicator each)
		}
		fmt.Fprintf(&buf, `,{"type":"indicator","spec_version":"2.1","id":"indicator--%08x-0000-4000-8000-%012x","created":"2025-02-21T11:00:00.000Z",`+
			`"modified":"2025-02-21T11:00:00.000Z","created_by_ref":"identity--00000000-0000-4000-8000-000000000001","indicator_types":["malicious-activity"],`+
			`"confidence":%d,"pattern":"[cryptocurrency-wallet:value = '%s']","pattern_type":"stix","valid_from":"2025-02-21T11:00:00Z",`+
			`"object_marking_refs":["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"],"labels":["hack"]}`, i, i, i%101, v)
	}
	buf.WriteString("]}")
	b.Logf("bundle: %d indicators, %d MiB", n, buf.Len()>>20)

	_, f := testkit.SpawnChild(b, "kafka")
	tp, err := OpenTopic(kafka.Config{Auth: kafkatest.Keys(), Brokers: strings.Split(f[0], ","), CreateTopics: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tp.Close()
	ctx := context.Background()
	if err := tp.Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	feed, err := ParseSTIX(buf.Bytes(), "stix:bench", "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	parsed := time.Since(start)
	res, err := Import(ctx, tp, feed, ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	total := time.Since(start)
	b.Logf("import of %d indicators: parse and validate %s, diff and publish %s, total %s (%d added)",
		len(feed.Indicators), parsed.Round(time.Millisecond), (total - parsed).Round(time.Millisecond), total.Round(time.Millisecond), res.Added)
	b.ReportMetric(total.Seconds(), "import-s")
}
