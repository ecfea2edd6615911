package gate

import (
	"fmt"
	"strings"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

// AssetList is the assets the gate accepts: each followed network's
// coin, and the configured tokens.
type AssetList struct {
	networks map[string]bool
	decimals map[string]int
}

// NewAssetList accepts the coin of each of networks ("eth/mainnet") and
// the tokens, checked, naming each bad entry under key[i].
func NewAssetList(p *config.Problems, key string, networks []string, tokens []Asset) *AssetList {
	l := &AssetList{networks: map[string]bool{}, decimals: map[string]int{}}
	for _, n := range networks {
		c, _, _ := strings.Cut(n, "/")
		l.networks[n] = true
		_, dec := chain.Coin(chain.Chain(c))
		l.decimals[n+"/"+intent.Native] = dec
	}
	for i, t := range tokens {
		k := fmt.Sprintf("%s[%d]", key, i)
		if t.Network == "" {
			t.Network = "mainnet"
		}
		switch {
		case t.Chain != string(chain.ETH):
			p.Add(k+".chain", "%q: only eth has tokens", t.Chain)
			continue
		case !l.networks[t.Chain+"/"+t.Network]:
			p.Add(k+".network", "%s/%s is not a network this instance follows", t.Chain, t.Network)
			continue
		case t.Decimals < 0 || t.Decimals > 36:
			p.Add(k+".decimals", "%d: want 0 to 36", t.Decimals)
			continue
		}
		a, err := address.Normalize(chain.ETH, t.Network, t.Contract)
		if err != nil {
			p.Add(k+".contract", "%v", err)
			continue
		}
		l.decimals[t.Chain+"/"+t.Network+"/"+strings.ToLower(a)] = t.Decimals
	}
	return l
}

// Decimals implements Assets.
func (l *AssetList) Decimals(c, network, asset string) (int, bool) {
	d, ok := l.decimals[c+"/"+network+"/"+asset]
	return d, ok
}

// Network implements Assets.
func (l *AssetList) Network(c, network string) bool { return l.networks[c+"/"+network] }
