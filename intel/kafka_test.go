package intel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
)

func topic(t testing.TB, brokers []string) *Topic {
	tp, err := OpenTopic(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true})
	require.NoError(t, err)
	t.Cleanup(tp.Close)
	return tp
}

func ofacFeed(t testing.TB, cur string, drop int) *Feed {
	b, err := os.ReadFile(filepath.Join("testdata", "ofac", "sanctioned_addresses_"+cur+".txt"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f, err := ParseOFACList([]byte(strings.Join(lines[:len(lines)-drop], "\n")), "ofac:"+cur, cur, now)
	require.NoError(t, err)
	return f
}

// TestImportThroughKafka: imports are transactions on the compacted
// topic; re-importing changes nothing; a newer version revokes what it no
// longer lists (and a large shrink needs consent); stores rebuilt from the
// topic give identical answers; a failed import leaves nothing behind.
func TestImportThroughKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	tp := topic(t, brokers)
	require.NoError(t, tp.Ensure(ctx))
	require.NoError(t, tp.Ensure(ctx), "idempotent")

	xbt := ofacFeed(t, "XBT", 0)
	res, err := Import(ctx, tp, xbt, ImportOptions{})
	require.NoError(t, err)
	require.Equal(t, 434, res.Added)
	require.Len(t, res.Skipped, 1, "the Tron address in OFAC's XBT list")
	eth := ofacFeed(t, "ETH", 0)
	_, err = Import(ctx, tp, eth, ImportOptions{})
	require.NoError(t, err)

	res, err = Import(ctx, tp, ofacFeed(t, "XBT", 0), ImportOptions{})
	require.NoError(t, err)
	require.Equal(t, ImportResult{Feed: "ofac:XBT", Version: xbt.Version, Unchanged: 434, Skipped: res.Skipped}, *res, "importing twice changes nothing")

	// A version that drops 300 of 434 needs consent; one that drops 10 does not.
	_, err = Import(ctx, tp, ofacFeed(t, "XBT", 300), ImportOptions{})
	require.ErrorContains(t, err, "--allow-shrink")
	smaller := ofacFeed(t, "XBT", 10)
	res, err = Import(ctx, tp, smaller, ImportOptions{})
	require.NoError(t, err)
	require.Equal(t, 10, res.Revoked)
	require.Equal(t, 424, res.Unchanged)
	dropped := xbt.Indicators[len(xbt.Indicators)-1]
	kept := xbt.Indicators[0]

	// A failed transaction (a record over the broker's limit) leaves
	// nothing visible.
	huge := eth.Indicators[0]
	huge.ID, huge.Value, huge.Description = ID("x", chain.ETH, KindAddress, "0x"+strings.Repeat("1", 40)), "0x"+strings.Repeat("1", 40), strings.Repeat("x", 2<<20)
	ok := eth.Indicators[1]
	ok.ID, ok.Value, ok.Source = ID("y", chain.ETH, KindAddress, "0x"+strings.Repeat("2", 40)), "0x"+strings.Repeat("2", 40), "y"
	require.Error(t, tp.Publish(ctx, "test-abort", []Indicator{ok, huge}))

	stores := make([]*Store, 2)
	for i := range stores {
		stores[i] = NewStore(topic(t, brokers))
		sctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		go func() { _ = stores[i].Run(sctx) }()
	}
	for _, s := range stores {
		require.Eventually(t, s.Ready, 30*time.Second, 10*time.Millisecond)
	}
	at := time.Now()
	for _, s := range stores {
		v := Screen(s.Index, chain.BTC, "mainnet", kept.Value, at)
		require.Equal(t, "flagged", v.Verdict)
		require.Equal(t, CategorySanctions, v.Category)
		require.Equal(t, 100, v.Confidence)
		require.Equal(t, kept.ID, v.Matches[0].ID)
		require.Equal(t, "clean", Screen(s.Index, chain.BTC, "mainnet", dropped.Value, at).Verdict, "revoked by the newer version")
		require.Equal(t, "flagged", Screen(s.Index, chain.ETH, "mainnet", "0x"+strings.ToUpper(eth.Indicators[5].Value[2:]), at).Verdict,
			"any accepted spelling of the address matches")
		require.Equal(t, "flagged", Screen(s.Index, chain.ETH, "mainnet", eth.Indicators[5].Value, at).Verdict)
		require.Equal(t, "clean", Screen(s.Index, chain.ETH, "mainnet", ok.Value, at).Verdict, "the aborted import is invisible")
		require.Equal(t, "invalid", Screen(s.Index, chain.BTC, "mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", at).Verdict)
		require.Equal(t, 434+152, s.Index.Len())
	}

	// A store rebuilt from the topic now (a restart) gives the same answer
	// as the running ones for every value ever imported.
	rebuilt := NewStore(topic(t, brokers))
	rctx, rstop := context.WithCancel(ctx)
	t.Cleanup(rstop)
	go func() { _ = rebuilt.Run(rctx) }()
	require.Eventually(t, rebuilt.Ready, 30*time.Second, 10*time.Millisecond)
	compared := 0
	for _, f := range []*Feed{xbt, eth} {
		for _, in := range f.Indicators {
			want := Screen(rebuilt.Index, in.Chain, "mainnet", in.Value, at)
			for _, s := range stores {
				got := Screen(s.Index, in.Chain, "mainnet", in.Value, at)
				require.Equal(t, want.Verdict, got.Verdict, in.Value)
				require.ElementsMatch(t, want.Matches, got.Matches, in.Value)
			}
			compared++
		}
	}
	require.Equal(t, 434+152, compared)
	require.Equal(t, stores[0].Index.Len(), rebuilt.Index.Len())

	// Live: an indicator imported now reaches running stores.
	csv := "address,chain,category,confidence\n0x" + strings.Repeat("3", 40) + ",eth,hack,95\n"
	f, err := ParseCSV([]byte(csv), "partner:hacks", "partner-x", "", now)
	require.NoError(t, err)
	_, err = Import(ctx, tp, f, ImportOptions{})
	require.NoError(t, err)
	for _, s := range stores {
		require.Eventually(t, func() bool {
			return Screen(s.Index, chain.ETH, "mainnet", "0x"+strings.Repeat("3", 40), time.Now()).Verdict == "flagged"
		}, 30*time.Second, 10*time.Millisecond)
	}
}
