package kafka_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
)

// TestAssemblerDuplicatePart: a part stored twice (a retried write) while
// another part of the block has not arrived yet must not make the block
// complete: it used to, with the first part's outputs twice and the
// missing part's never (a deposit in it lost, its senders unscreened).
func TestAssemblerDuplicatePart(t *testing.T) {
	tp := kafka.DefaultTopics()
	a := kafka.NewAssembler(tp, nil)
	part := func(i int, txs ...string) []byte {
		items := make([]string, len(txs))
		for j, tx := range txs {
			items[j] = fmt.Sprintf(`{"tx_hash":%q,"vout":0,"amount":"100000"}`, tx)
		}
		return []byte(fmt.Sprintf(`{"v":1,"kind":"output","chain":"btc","network":"regtest","block_number":5,"block_hash":"h5","block_time":5,"part":%d,"parts":2,"items":[%s]}`,
			i, strings.Join(items, ",")))
	}
	ev := chain.BlockEvent{V: 1, Type: chain.BlockAdded, Seq: 1, Header: chain.Header{Chain: chain.BTC, Network: "regtest", Height: 5, Hash: "h5"}, OutputCount: 4}
	evb, err := json.Marshal(ev)
	require.NoError(t, err)
	none := func(string) (uint64, bool) { return 0, false }
	require.NoError(t, a.Add(&kafka.Record{Topic: tp.Outputs, Partition: 0, Offset: 10, Value: part(0, "a", "b")}, none))
	require.NoError(t, a.Add(&kafka.Record{Topic: tp.Outputs, Partition: 0, Offset: 11, Value: part(0, "a", "b")}, none))
	require.NoError(t, a.Add(&kafka.Record{Topic: tp.Blocks, Partition: 0, Offset: 1, Value: evb}, none))
	_, _, ok := a.Ready("btc/regtest", 1)
	require.False(t, ok, "complete with part 1 missing")
	require.Equal(t, int64(10), a.Resume()["cordon.outputs/0"], "the parts are still needed after a restart")

	require.NoError(t, a.Add(&kafka.Record{Topic: tp.Outputs, Partition: 1, Offset: 3, Value: part(1, "c", "d")}, none))
	_, blk, ok := a.Ready("btc/regtest", 1)
	require.True(t, ok)
	var txs []string
	for _, o := range blk.Outputs {
		txs = append(txs, o.TxHash)
	}
	require.Equal(t, []string{"a", "b", "c", "d"}, txs)
	a.Done("btc/regtest", 1)
	require.Equal(t, int64(12), a.Resume()["cordon.outputs/0"], "done: read on after the parts")
}
