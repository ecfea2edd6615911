package registry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestParseEntries(t *testing.T) {
	csv := "chain,network,address,account,asset,kind\n" +
		"eth,mainnet,0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,user-1,native,deposit\n" +
		"eth,mainnet,0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD,user-2,native,deposit\n" + // bad checksum
		"btc,mainnet,bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4,user-3,,\n" +
		"btc,testnet,bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4,user-4,,\n" + // wrong network
		"eth,mainnet,0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359,,,hot\n" +
		"eth,mainnet,0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359,,,deposit\n" + // no account
		"eth,mainnet,0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb,user 5,*,deposit\n" + // space in account
		"eth,mainnet,0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb,user-6,0x12,deposit\n" + // bad token
		"eth,mainnet,0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb,user-7,*,vault\n" // bad kind
	got, bad, err := ParseEntries(strings.NewReader(csv), "")
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", got[0].Address)
	require.Equal(t, "*", got[1].Asset)
	require.Equal(t, KindDeposit, got[1].Kind)
	require.Equal(t, KindHot, got[2].Kind)
	lines := []int{}
	for _, b := range bad {
		lines = append(lines, b.Row)
	}
	require.Equal(t, []int{3, 5, 7, 8, 9, 10}, lines)
	require.Contains(t, bad[0].Error, "checksum")
	require.Contains(t, bad[1].Error, "testnet")
	require.Contains(t, bad[2].Error, "needs an account")
	require.Contains(t, bad[3].Error, "printable ASCII")
	require.Contains(t, bad[4].Error, "token contract")
	require.Contains(t, bad[5].Error, "kind")

	jsonl := `{"chain":"eth","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","account":"u1"}` + "\n\n" +
		`{"chain":"eth","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","acount":"typo"}` + "\n" +
		`{"address":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","account":"u2"}` + "\n" + `{"chain":`
	got, bad, err = ParseEntries(strings.NewReader(jsonl), chain.BTC)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, chain.BTC, got[1].Chain, "the default chain")
	require.Len(t, bad, 2)
	require.Equal(t, 3, bad[0].Row)
	require.Contains(t, bad[0].Error, "unknown field")
	require.Equal(t, 5, bad[1].Row)

	_, _, err = ParseEntries(strings.NewReader("address,colour\n"), chain.ETH)
	require.ErrorContains(t, err, `unknown column "colour"`)
}

func TestRegistry(t *testing.T) {
	g := NewIndex()
	for i := range 100_000 {
		g.Put(&Entry{Chain: chain.ETH, Network: "mainnet", Address: fmt.Sprintf("0x%040x", i), Account: fmt.Sprintf("user-%d", i%5000),
			Asset: "*", Kind: KindDeposit})
	}
	require.Equal(t, 100_000, g.Len())
	e, ok := g.Lookup(chain.ETH, "mainnet", fmt.Sprintf("0x%040x", 12345))
	require.True(t, ok)
	require.Equal(t, "user-2345", e.Account)
	require.Equal(t, KindDeposit, e.Kind)
	_, ok = g.Lookup(chain.ETH, "mainnet", fmt.Sprintf("0x%040x", 100_001))
	require.False(t, ok)
	_, ok = g.Lookup(chain.ETH, "sepolia", fmt.Sprintf("0x%040x", 1))
	require.False(t, ok, "the network is part of the identity")

	// Moved to another account, then removed.
	g.Put(&Entry{Chain: chain.ETH, Network: "mainnet", Address: fmt.Sprintf("0x%040x", 7), Account: "user-x", Asset: "native", Kind: KindDeposit})
	e, _ = g.Lookup(chain.ETH, "mainnet", fmt.Sprintf("0x%040x", 7))
	require.Equal(t, "user-x", e.Account)
	require.Equal(t, "native", e.Asset)
	g.Put(&Entry{Chain: chain.ETH, Network: "mainnet", Address: fmt.Sprintf("0x%040x", 7), Removed: true, Kind: KindDeposit})
	_, ok = g.Lookup(chain.ETH, "mainnet", fmt.Sprintf("0x%040x", 7))
	require.False(t, ok)
	require.Equal(t, 99_999, g.Len())
}

// FuzzParseEntries: hostile files never panic; accepted entries are valid.
func FuzzParseEntries(f *testing.F) {
	f.Add("chain,address,account\neth,0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,u\n")
	f.Add(`{"chain":"btc","address":"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa","account":"u"}`)
	f.Fuzz(func(t *testing.T, s string) {
		got, _, _ := ParseEntries(strings.NewReader(s), chain.ETH)
		for _, e := range got {
			again := e
			require.NoError(t, again.Validate())
			require.Equal(t, e, again)
		}
	})
}
