package gatebench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
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

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// mix is splitmix64: the benchmark's addresses are derived from it.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// addr is a random-looking Ethereum address of (space, a, b). Indicator
// values (below) have 24 leading zero digits, so these never collide
// with them.
func addr(space, a, b uint64) string {
	k := space<<56 ^ a<<20 ^ b
	return fmt.Sprintf("0x%016x%016x%08x", mix(k), mix(k^0x5555), uint32(mix(k^0xaaaa)))
}

// indicatorValue is the address of indicator i, as intel's own
// BenchmarkIndex makes them.
func indicatorValue(i int) string { return fmt.Sprintf("0x%040x", uint64(i)*0x9e3779b97f4a7c15) }

// indicator i, the shape of intel's BenchmarkIndex: 8 sources, 6
// categories, a tenth with an expiry.
func indicator(i int) intel.Indicator {
	in := intel.Indicator{Kind: intel.KindAddress, Chain: chain.ETH, Network: "mainnet", Value: indicatorValue(i), Source: "source-" + strconv.Itoa(i%8),
		Feed: "feed-" + strconv.Itoa(i%8), Category: []string{intel.CategorySanctions, intel.CategoryHack, intel.CategoryMixer, intel.CategoryPhishing,
			intel.CategoryScam, intel.CategoryRansomware}[i%6],
		Confidence: i % 101, TLP: intel.TLPAmber, ValidFrom: time.Unix(1_600_000_000, 0), Created: time.Unix(1_600_000_000, 0), Modified: time.Unix(1_600_000_000, 0)}
	if i%10 == 0 {
		in.ValidUntil = time.Unix(1_900_000_000, 0)
	}
	in.ID = intel.ID(in.Source, in.Chain, in.Kind, in.Value)
	return in
}

// Address spaces.
const (
	spaceHistory = 1 // destinations an account used: addr(1, account, 0 or 1)
	spaceDeposit = 2 // the exchange's deposit addresses: addr(2, account, 0)
	spaceNew     = 3 // destinations never used
	spacePeer    = 4 // counterparties of destinations
)

// ethPrice is the static ETH price of the benchmarks' prices.
const ethPrice = 2000

// peers is an in-memory counterparties source: 100 clean counterparties
// per destination, derived from it; one destination in 20 dealt with a
// listed address. Its answers are cached by the risk layer; the
// benchmark measures the cache's hit path (risk's BenchmarkAssess
// measures the same, and ClickHouse's cold lookup apart).
type peers struct{ indicators int }

var peerSeed = maphash.MakeSeed()

func (p peers) Counterparties(_ context.Context, _ chain.Chain, _, a string, limit int) ([]string, error) {
	h := maphash.String(peerSeed, a)
	out := make([]string, 0, limit)
	for i := range limit {
		out = append(out, addr(spacePeer, h&0xfffffffff, uint64(i)))
	}
	if h%20 == 0 && limit > 0 {
		out[0] = indicatorValue(int(h % uint64(p.indicators)))
	}
	return out, nil
}

// world is the state of a busy gate: the indicator index, the registry,
// the risk layer holding every account's history (once with the cmd's
// wiring, without counterparties; once with cached counterparties), the
// default policy over five approvers, static prices.
type world struct {
	now        time.Time
	indicators int
	accounts   int
	approvers  *intent.Approvers
	keys       map[string]ed25519.PrivateKey
	policy     *policy.Policy
	assets     *gate.AssetList
	index      *intel.Index
	registry   *registry.Index
	risk       *risk.Risk // as cmd wires it (no counterparties)
	riskCP     *risk.Risk // with 100 cached counterparties per destination, each screened
	history    int        // withdrawals added per risk layer
	loaded     []string   // what loading took, for the log
	// Live heap each part holds, MiB.
	indexMB, registryMB, riskMB float64
}

var (
	worldOnce sync.Once
	theWorld  *world
)

// loadWorld builds the world once per test binary: CORDON_BENCH_INDICATORS
// indicators (default 10,000,000), CORDON_BENCH_ACCOUNTS accounts
// (default 1,000,000) with a registered deposit address each and three
// withdrawals each over the last 365 days (to two destinations), added
// in time order through risk.Add.
func loadWorld(b *testing.B) *world {
	worldOnce.Do(func() {
		w := &world{indicators: envInt("CORDON_BENCH_INDICATORS", 10_000_000), accounts: envInt("CORDON_BENCH_ACCOUNTS", 1_000_000)}
		w.now = time.Now().UTC().Truncate(time.Second)
		w.approvers, w.keys = approvers(b)
		var err error
		w.policy, err = policy.Default(w.approvers)
		require.NoError(b, err)
		var p config.Problems
		w.assets = gate.NewAssetList(&p, "gate.assets", []string{"eth/mainnet", "btc/mainnet"}, nil)
		require.NoError(b, p.Err())

		start, base := time.Now(), heap()
		w.index = intel.NewIndex()
		for i := range w.indicators {
			in := indicator(i)
			w.index.Put(&in)
		}
		after := heap()
		w.indexMB = mb(after - base)
		w.loaded = append(w.loaded, fmt.Sprintf("intel index: %d indicators in %s, %.0f MiB", w.indicators, time.Since(start).Round(time.Millisecond), w.indexMB))

		start, base = time.Now(), after
		w.registry = registry.NewIndex()
		for a := range w.accounts {
			e := registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: addr(spaceDeposit, uint64(a), 0), Account: account(a), Asset: "*", Kind: registry.KindDeposit}
			w.registry.Put(&e)
		}
		after = heap()
		w.registryMB = mb(after - base)
		w.loaded = append(w.loaded, fmt.Sprintf("registry: %d deposit addresses in %s, %.0f MiB", w.accounts, time.Since(start).Round(time.Millisecond), w.registryMB))

		reg := risk.RegistryFunc(func(c chain.Chain, network, a string) (string, string, bool) {
			e, ok := w.registry.Lookup(c, network, a)
			return e.Kind, e.Account, ok
		})
		w.risk, err = risk.New(risk.Defaults(), risk.Deps{Screener: w.index, Registry: reg})
		require.NoError(b, err)
		w.riskCP, err = risk.New(risk.Defaults(), risk.Deps{Screener: w.index, Registry: reg, Counterparties: peers{w.indicators}})
		require.NoError(b, err)
		start, base = time.Now(), after
		rng := rand.New(rand.NewPCG(1, 2))
		n := 3 * w.accounts
		span := 365 * 24 * time.Hour
		const stride = 7919 // prime: k*stride mod accounts visits each account once per round
		for k := range n {
			a := k * stride % w.accounts
			at := w.now.Add(-span + time.Duration(int64(span)/int64(n)*int64(k+1)))
			amount := big.NewInt(rng.Int64N(5e17) + 1e15) // 0.001 to 0.5 ETH
			rec := risk.Record{ID: "wd_h" + strconv.Itoa(k), Account: account(a), Chain: chain.ETH, Network: "mainnet", Asset: intent.Native,
				Amount: amount, USD: usd(amount), Destination: addr(spaceHistory, uint64(a), uint64(k/w.accounts%2)), Time: at}
			require.NoError(b, w.risk.Add(rec))
			require.NoError(b, w.riskCP.Add(rec))
		}
		w.history = n
		after = heap()
		w.riskMB = mb(after-base) / 2
		w.loaded = append(w.loaded, fmt.Sprintf("risk: %d withdrawals of %d accounts added in %s (both layers), %.0f MiB per layer; %d held within retain",
			n, w.accounts, time.Since(start).Round(time.Millisecond), w.riskMB, w.risk.Held()))
		theWorld = w
	})
	if theWorld == nil {
		b.Fatal("the world did not load")
	}
	return theWorld
}

// logLoad logs what loading the world took (benchmarks print a
// sub-benchmark's log, not their parent's).
func (w *world) logLoad(b *testing.B) {
	for _, l := range w.loaded {
		b.Log(l)
	}
}

func account(a int) string { return "acct-" + strconv.Itoa(a) }

// usd is the dollar value of amount wei at ethPrice.
func usd(amount *big.Int) intent.USD {
	r := new(big.Rat).SetFrac(new(big.Int).Mul(amount, big.NewInt(ethPrice)), new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil))
	return intent.Dollars(r)
}

// approvers are the gate's five: alice, bob, carol (security), dave,
// erin (finance).
func approvers(tb testing.TB) (*intent.Approvers, map[string]ed25519.PrivateKey) {
	keys := map[string]ed25519.PrivateKey{}
	var list []intent.Approver
	for i, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, name)
		k := ed25519.NewKeyFromSeed(seed)
		keys[name] = k
		list = append(list, intent.Approver{Name: name, Groups: []string{[]string{"security", "security", "security", "finance", "finance"}[i]},
			Key: base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	as, err := intent.NewApprovers("gate.approvers", list)
	require.NoError(tb, err)
	return as, keys
}

// core is a gate core over the world with risk layer r, as cmd builds it.
func (w *world) core(tb testing.TB, r gate.Risk) *gate.Core {
	prices, err := policy.NewPrices(policy.PricesConfig{Assets: []policy.AssetPrice{
		{Chain: "eth", Asset: "native", Decimals: 18, USD: strconv.Itoa(ethPrice), Static: true}}}, w.now)
	require.NoError(tb, err)
	c := gate.NewCore()
	c.Approvers, c.Policy, c.Prices, c.Risk, c.Assets = w.approvers, w.policy, prices, r, w.assets
	c.Breaker = gate.BreakerConfig{ResetQuorum: 2, ResetGroups: []string{"security"}}
	return c
}

// mixed is how a request's destination is chosen.
type mixed struct {
	// Of every 100 requests: flagged go to a listed address, deposit to
	// another account's deposit address; of the rest half go to a
	// destination the account used, half to a new one.
	flagged, deposit int
}

// body is request i's JSON body: an account among the world's, a small
// amount (0.001 to 1 ETH: the default policy's first tier), and the
// request context an exchange sends.
func (w *world) body(rng *rand.Rand, id string, m mixed) []byte {
	a := rng.IntN(w.accounts)
	var dst string
	switch p := rng.IntN(100); {
	case p < m.flagged:
		dst = indicatorValue(rng.IntN(w.indicators))
	case p < m.flagged+m.deposit:
		dst = addr(spaceDeposit, uint64(rng.IntN(w.accounts)), 0)
	case p%2 == 0:
		dst = addr(spaceHistory, uint64(a), uint64(rng.IntN(2)))
	default:
		dst = addr(spaceNew, rng.Uint64()>>8, 0)
	}
	amount := strconv.FormatInt(rng.Int64N(999e15)+1e15, 10)
	b, _ := json.Marshal(map[string]any{"id": id, "account": account(a), "chain": "eth", "asset": "native", "amount": amount, "destination": dst,
		"context": map[string]any{"client_ip": "203.0.113." + strconv.Itoa(1+rng.IntN(250)), "device_id": "dev-" + strconv.Itoa(a),
			"session_age_seconds": 600 + rng.IntN(7200), "device_age_seconds": 86400 * (1 + rng.IntN(400)), "account_changed_seconds": 86400 * (1 + rng.IntN(700)),
			"risk_score": strconv.Itoa(rng.IntN(60)) + ".5"}})
	return b
}

// requests are n decoded and normalized requests (as the API hands
// them to the core).
func (w *world) requests(tb testing.TB, n int, m mixed) []gate.Request {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]gate.Request, n)
	for i := range out {
		q, _, err := gate.DecodeRequest(bytes.NewReader(w.body(rng, "bench-q"+strconv.Itoa(i), m)), w.assets)
		require.NoError(tb, err)
		out[i] = q
	}
	return out
}
