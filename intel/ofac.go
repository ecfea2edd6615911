package intel

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"

	"github.com/cordonhq/cordon/internal/chain"
)

// OFAC's currency codes and the chain cordon matches them on. The USDT and
// USDC lists mix chains (the tokens live on several): their 0x addresses
// are Ethereum's, Tron addresses (T…) are reported as not matched, and
// the rest must be Bitcoin addresses (USDT on Omni).
var ofacCurrencies = map[string]chain.Chain{"XBT": chain.BTC, "BTC": chain.BTC, "ETH": chain.ETH, "USDT": "", "USDC": ""}

// OFACCurrency reads the currency code of a sanctioned_addresses_XXX.txt
// file name.
func OFACCurrency(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if i := strings.LastIndexByte(base, '_'); i >= 0 {
		return strings.ToUpper(base[i+1:])
	}
	return ""
}

// ParseOFACList parses a one-address-per-line list of OFAC-sanctioned
// addresses of currency (XBT, ETH, USDT, …). Blank lines and lines
// starting with # are ignored. Every invalid line is reported.
func ParseOFACList(content []byte, name, currency string, now time.Time) (*Feed, error) {
	currency = strings.ToUpper(currency)
	c, ok := ofacCurrencies[currency]
	if !ok {
		return nil, fmt.Errorf("OFAC list of %q: cordon matches XBT, ETH, USDT and USDC addresses (Bitcoin and Ethereum); this list is not imported", currency)
	}
	col, err := newCollector(name, "ofac", now)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if isTron(s) {
			// OFAC's lists carry Tron addresses, sometimes even in the
			// XBT list; cordon does not watch Tron.
			col.feed.Skipped = append(col.feed.Skipped, fmt.Sprintf("line %d: %s is a Tron address; not matched", line, s))
			continue
		}
		lc := c
		if lc == "" {
			lc = chain.BTC
			if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
				lc = chain.ETH
			}
		}
		in := Indicator{Kind: KindAddress, Chain: lc, Network: "mainnet", Value: s, Category: CategorySanctions, Confidence: 100,
			TLP: TLPClear, Description: "OFAC SDN list, digital currency address (" + currency + ")",
			Refs: []Ref{{SourceName: "ofac", URL: "https://sanctionssearch.ofac.treas.gov/"}}}
		if !col.add(fmt.Sprintf("line %d", line), in) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		col.problem(fmt.Sprintf("line %d", line+1), err)
	}
	if len(col.problems) == 0 && len(col.feed.Indicators) == 0 {
		return nil, ErrEmpty
	}
	return col.done(content)
}

// isTron tells whether s is a Tron address: base58check, version 0x41.
func isTron(s string) bool {
	if len(s) != 34 || s[0] != 'T' {
		return false
	}
	_, version, err := base58.CheckDecode(s)
	return err == nil && version == 0x41
}
