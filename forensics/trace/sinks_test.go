package trace

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestReadSinks(t *testing.T) {
	in := "Address,Label,Kind,Chain\n" +
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,Exchange X hot,exchange,eth\n" +
		"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4,ignored,exchange,btc\n" +
		"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359,,,\n"
	got := map[string]Sink{}
	require.NoError(t, ReadSinks(strings.NewReader(in), "sinks.csv", chain.ETH, "mainnet", got))
	require.Equal(t, map[string]Sink{
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed": {Address: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Label: "Exchange X hot", Kind: "exchange"},
		"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359": {Address: "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", Kind: "known"},
	}, got)

	// Every bad row is reported by line; nothing is taken from the file.
	bad := "address,label\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD,typo\n0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,ok\nnope,x\n"
	got = map[string]Sink{}
	err := ReadSinks(strings.NewReader(bad), "bad.csv", chain.ETH, "mainnet", got)
	require.ErrorContains(t, err, "bad.csv: line 2")
	require.ErrorContains(t, err, "checksum")
	require.ErrorContains(t, err, "bad.csv: line 4")
	require.Empty(t, got)

	require.ErrorContains(t, ReadSinks(strings.NewReader("label,kind\nx,y\n"), "h.csv", chain.ETH, "mainnet", got), "no address column")
	require.ErrorContains(t, ReadSinks(strings.NewReader(""), "e.csv", chain.ETH, "mainnet", got), "read header")
	require.ErrorContains(t, ReadSinks(strings.NewReader("address\n\"0xab"), "q.csv", chain.ETH, "mainnet", got), "q.csv")
}

// FuzzReadSinks: hostile files never panic, and are taken whole or not at all.
func FuzzReadSinks(f *testing.F) {
	f.Add("address,label,kind\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,x,exchange\n")
	f.Add("address\n\"unterminated\n")
	f.Add("chain,address\nbtc,1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n")
	f.Fuzz(func(t *testing.T, in string) {
		got := map[string]Sink{}
		if err := ReadSinks(strings.NewReader(in), "f.csv", chain.ETH, "mainnet", got); err != nil {
			require.Empty(t, got)
		}
		for a, s := range got {
			require.Equal(t, a, s.Address)
			require.True(t, strings.HasPrefix(a, "0x") && len(a) == 42)
		}
	})
}

func TestRender(t *testing.T) {
	require.Equal(t, "1.5 ETH", FormatAmount(chain.ETH, chain.AssetNative, "1500000000000000000"))
	require.Equal(t, "0.00000001 BTC", FormatAmount(chain.BTC, chain.AssetNative, "1"))
	require.Equal(t, "21 BTC", FormatAmount(chain.BTC, chain.AssetNative, "2100000000"))
	require.Equal(t, "0 ETH", FormatAmount(chain.ETH, chain.AssetNative, "0"))
	require.Equal(t, "12 ×0x5aaeb605…1beaed", FormatAmount(chain.ETH, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "12"))

	hostile := `</script><script>alert(1)</script>`
	res := &Result{Chain: chain.ETH, Network: "mainnet", Direction: "forward", From: []string{"0xa"}, Hops: 1,
		Nodes: []Node{{Address: "0xa"}, {Address: "0xb", Hop: 1, Sink: &Sink{Address: "0xb", Label: hostile, Kind: "exchange"}}},
		Edges: []Edge{{Hop: 1, From: "0xa", To: "0xb", Asset: chain.AssetNative, Amount: "1000000000000000000", TxHash: "0xt", Time: time.Unix(0, 0).UTC()}}}
	var b bytes.Buffer
	require.NoError(t, Write(&b, res, "html"))
	require.NotContains(t, b.String(), hostile, "a label cannot end the data script")
	require.Contains(t, b.String(), `\u003c/script\u003e`)
	b.Reset()
	require.NoError(t, Write(&b, res, "dot"))
	require.Contains(t, b.String(), `"0xa" -> "0xb"`)
	b.Reset()
	require.NoError(t, Write(&b, res, "table"))
	require.Contains(t, b.String(), "1 ETH")
	require.Contains(t, b.String(), "stop: exchange")
	require.ErrorContains(t, Write(&b, res, "pdf"), `format "pdf"`)
}
