package risk_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/risk"
)

// mapScreener answers from a map of 20-byte addresses to indicators, the
// in-memory stand-in for the intel index: parse the hex, look it up.
type mapScreener struct {
	m    map[[20]byte]uint32
	hits []chain.Hit
}

func (s *mapScreener) Hits(_ chain.Chain, _, addr string) []chain.Hit {
	var k [20]byte
	if len(addr) != 42 {
		return nil
	}
	if _, err := hex.Decode(k[:], []byte(addr[2:])); err != nil {
		return nil
	}
	i, ok := s.m[k]
	if !ok {
		return nil
	}
	h := s.hits[i%uint32(len(s.hits))]
	h.Address = addr
	return []chain.Hit{h}
}

func benchAddr(i uint64, salt uint64) string {
	var b [20]byte
	binary.BigEndian.PutUint64(b[:8], i*0x9E3779B97F4A7C15^salt)
	binary.BigEndian.PutUint64(b[8:16], i+salt)
	binary.BigEndian.PutUint32(b[16:], uint32(i))
	return "0x" + hex.EncodeToString(b[:])
}

// peers answers limit counterparties per destination, derived from it;
// one destination in 20 has a listed one.
type peers struct{}

var seed = maphash.MakeSeed()

func (peers) Counterparties(_ context.Context, _ chain.Chain, _, addr string, limit int) ([]string, error) {
	h := maphash.String(seed, addr)
	out := make([]string, 0, limit)
	for i := range limit {
		out = append(out, benchAddr(h+uint64(i), 5)) // clean
	}
	if h%20 == 0 && limit > 0 { // one destination in 20 dealt with a listed address
		out[0] = benchAddr(h%10_000_000, 3)
	}
	return out, nil
}

type fixture struct {
	r        *risk.Risk
	queries  []risk.Query
	now      time.Time
	heapMB   float64
	accounts int
	recent   int
}

var (
	fixOnce sync.Once
	fix     fixture
)

// loadFixture builds the benchmark's state once: 1,000,000 accounts
// with settled history (3 destinations, 1 or 2 assets) restored from
// account states, 200,000 withdrawals in the last 24 hours, 10,000,000
// indicators.
func loadFixture(b *testing.B) *fixture {
	fixOnce.Do(func() {
		const accounts, indicators, recent = 1_000_000, 10_000_000, 200_000
		rng := rand.New(rand.NewPCG(1, 2))
		sc := &mapScreener{m: make(map[[20]byte]uint32, indicators), hits: []chain.Hit{
			{Indicator: "ofac/1", Category: "sanctions", Source: "OFAC", Confidence: 100},
			{Indicator: "misp/2", Category: "mixer", Source: "MISP", Confidence: 70}}}
		for i := range uint64(indicators) {
			var k [20]byte
			a := benchAddr(i, 3)
			_, _ = hex.Decode(k[:], []byte(a[2:]))
			sc.m[k] = uint32(i)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := risk.New(risk.Defaults(), risk.Deps{Screener: sc, Registry: reg{}, Counterparties: peers{}})
		require.NoError(b, err)
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		usdt := "0xdac17f958d2ee523a2206206994597c13d831ec7"
		for a := range accounts {
			st := risk.AccountState{Account: "acct-" + strconv.Itoa(a)}
			for d := range 3 {
				first := now.Add(-time.Duration(30+rng.IntN(300)) * 24 * time.Hour)
				st.Destinations = append(st.Destinations, risk.DestinationState{Chain: chain.ETH, Network: "mainnet", Address: benchAddr(uint64(a*3+d), 11),
					First: first, Last: first.Add(time.Duration(rng.IntN(20)) * 24 * time.Hour), Count: uint32(1 + rng.IntN(5))})
			}
			st.Assets = append(st.Assets, risk.AssetState{Chain: chain.ETH, Network: "mainnet", Asset: intent.Native, Count: uint32(2 + rng.IntN(8)),
				Max: new(big.Int).Mul(big.NewInt(rng.Int64N(1e6)+1), big.NewInt(1e15)).String()})
			if a%2 == 0 {
				st.Assets = append(st.Assets, risk.AssetState{Chain: chain.ETH, Network: "mainnet", Asset: usdt, Count: uint32(1 + rng.IntN(8)),
					Max: strconv.FormatInt(rng.Int64N(1e12), 10)})
			}
			require.NoError(b, r.RestoreAccount(st))
		}
		for i := range recent {
			a := rng.IntN(accounts)
			asset := intent.Native
			if i%3 == 0 {
				asset = usdt
			}
			at := now.Add(-time.Duration(rng.Int64N(int64(24 * time.Hour))))
			require.NoError(b, r.Add(risk.Record{ID: "wd_" + strconv.Itoa(i), Account: "acct-" + strconv.Itoa(a), Chain: chain.ETH, Network: "mainnet",
				Asset: asset, Amount: big.NewInt(rng.Int64N(1e18)), USD: intent.Dollars(big.NewRat(rng.Int64N(1e7), 100)),
				Destination: benchAddr(uint64(a*3+rng.IntN(3)), 11), Time: at}))
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		fix = fixture{r: r, now: now, heapMB: float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20), accounts: accounts, recent: recent}
		for i := range 10_000 {
			a := rng.IntN(accounts)
			dest := benchAddr(uint64(a*3+rng.IntN(3)), 11) // a known destination
			if i%2 == 0 {
				dest = benchAddr(uint64(rng.IntN(1<<40)), 17) // a new one
			}
			q := risk.Query{ID: "wd_q" + strconv.Itoa(i), Account: "acct-" + strconv.Itoa(a), Chain: chain.ETH, Network: "mainnet", Asset: intent.Native,
				Amount: big.NewInt(rng.Int64N(1e18)), USD: intent.Dollars(big.NewRat(rng.Int64N(1e7), 100)), Destination: dest,
				Context: intent.Context{SessionAge: ptr(3600), DeviceAge: ptr(90 * 86400), AccountChanged: ptr(365 * 86400), RiskScore: "12.5"}}
			fix.queries = append(fix.queries, q)
			// Warm the counterparties cache: the benchmark measures its hit path.
			_, err := r.Assess(context.Background(), q, now)
			require.NoError(b, err)
		}
	})
	return &fix
}

// BenchmarkAssess: one withdrawal's risk assessment with 1,000,000
// accounts' history and 10,000,000 indicators loaded, the
// counterparties (100 per destination, each screened) from the cache.
// Reports the p99 of single assessments and the heap the accounts take.
func BenchmarkAssess(b *testing.B) {
	f := loadFixture(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	findings := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		q := f.queries[i%len(f.queries)]
		// Time moves on by a millisecond per withdrawal.
		now := f.now.Add(time.Duration(i) * time.Millisecond)
		start := time.Now()
		res, err := f.r.Assess(ctx, q, now)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		findings += len(res.Findings)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(f.heapMB, "accounts-heap-MB")
	b.ReportMetric(float64(findings)/float64(b.N), "findings/op")
}

// BenchmarkClickHouseCounterparties: a cold lookup (no cache) of one
// destination's counterparties on a real ClickHouse holding
// CORDON_BENCH_TRANSFERS transfers (default 2,000,000) among 200,000
// addresses, generated inside ClickHouse and copied by the schema's
// views like loaded rows.
func BenchmarkClickHouseCounterparties(b *testing.B) {
	n := 2_000_000
	if v, err := strconv.Atoi(os.Getenv("CORDON_BENCH_TRANSFERS")); err == nil && v > 0 {
		n = v
	}
	const addrs, perBlock = 200_000, 100
	chtest.Need(b)
	ctx := context.Background()
	srv := chtest.Server(b)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(b, err)
	defer store.Close()
	require.NoError(b, store.Migrate(ctx, clickhouse.Schema))
	addrSQL := func(x string) string {
		return fmt.Sprintf("concat('0x', lower(hex(cityHash64(%[1]s))), lower(hex(cityHash64(%[1]s, 1))), substring(lower(hex(cityHash64(%[1]s, 2))), 1, 8))", x)
	}
	require.NoError(b, store.Exec(ctx, fmt.Sprintf(`INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed,
		tx_count, transfer_count, output_count, spend_count, miner, base_fee)
		SELECT 'eth', 'bench', number, concat('0xb', lower(hex(number))), concat('0xb', lower(hex(toUInt64(number - 1)))),
			toDateTime(1600000000 + number * 12), number + 1, 0, %[1]d, %[1]d, 0, 0, '', ''
		FROM numbers(%[2]d)`, perBlock, n/perBlock)))
	require.NoError(b, store.Exec(ctx, fmt.Sprintf(`INSERT INTO transfers (chain, network, block_number, block_hash, block_time, tx_hash,
		tx_index, log_index, asset, standard, from_address, to_address, amount, token_id)
		SELECT 'eth', 'bench', intDiv(number, %[1]d), concat('0xb', lower(hex(intDiv(number, %[1]d)))),
			toDateTime(1600000000 + intDiv(number, %[1]d) * 12), concat('0x', lower(hex(cityHash64(number, 7))), lower(hex(cityHash64(number, 8)))),
			number %% %[1]d, -1, 'native', 'native', %[2]s, %[3]s, '1000', ''
		FROM numbers(%[4]d)`, perBlock, addrSQL(fmt.Sprintf("number %% %d", addrs)), addrSQL(fmt.Sprintf("cityHash64(number) %% %d", addrs)), n)))
	var dests []string
	rows, err := store.Query(ctx, `SELECT `+addrSQL("toUInt64(number * 7919 % 200000)")+` FROM numbers(1000)`)
	require.NoError(b, err)
	for rows.Next() {
		var a string
		require.NoError(b, rows.Scan(&a))
		dests = append(dests, a)
	}
	require.NoError(b, rows.Err())
	cp := risk.NewClickHouse(store)
	got, err := cp.Counterparties(ctx, chain.ETH, "bench", dests[0], 100)
	require.NoError(b, err)
	require.NotEmpty(b, got)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := cp.Counterparties(ctx, chain.ETH, "bench", dests[i%len(dests)], 100); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}
