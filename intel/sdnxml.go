package intel

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

const dcaPrefix = "Digital Currency Address - "

// ParseOFACXML parses OFAC's SDN list as XML: the advanced format
// (SDN_ADVANCED.XML: Feature elements whose FeatureType is "Digital
// Currency Address - XXX", the address in their VersionDetail) or the
// classic sdn.xml (idList entries whose idType is "Digital Currency
// Address - XXX"). XBT addresses are Bitcoin, ETH/USDT/USDC ones Ethereum
// (0x) or Bitcoin (Omni); Tron addresses and other currencies are listed
// as not matched. Namespaces are ignored.
func ParseOFACXML(content []byte, name string, now time.Time) (*Feed, error) {
	type feature struct {
		typeID, value, party, currency string
		line                           int
	}
	dec := xml.NewDecoder(bytes.NewReader(content))
	dec.Strict = true
	types := map[string]string{} // FeatureType ID → name
	var feats []feature
	var path []string
	var text strings.Builder
	attrs := map[string]map[string]string{} // element → its attributes, for the open elements that matter
	var party, featType, curIDType, curIDNumber, curEntry string
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := dec.InputPos()
			return nil, fmt.Errorf("OFAC XML: line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := t.Name.Local
			if root == "" {
				root = n
			}
			path = append(path, n)
			text.Reset()
			a := map[string]string{}
			for _, at := range t.Attr {
				a[at.Name.Local] = at.Value
			}
			attrs[n] = a
			switch n {
			case "DistinctParty":
				party = a["FixedRef"]
			case "Feature":
				featType = a["FeatureTypeID"]
			case "sdnEntry":
				curEntry = ""
			case "id":
				curIDType, curIDNumber = "", ""
			}
		case xml.CharData:
			if text.Len() < 4096 {
				text.Write(t)
			}
		case xml.EndElement:
			n := t.Name.Local
			v := strings.TrimSpace(text.String())
			line, _ := dec.InputPos()
			switch {
			case n == "FeatureType":
				types[attrs["FeatureType"]["ID"]] = v
			case n == "VersionDetail" && featType != "":
				feats = append(feats, feature{typeID: featType, value: v, party: party, line: line})
			case n == "Feature":
				featType = ""
			case n == "uid" && len(path) >= 2 && path[len(path)-2] == "sdnEntry":
				curEntry = v
			case n == "idType":
				curIDType = v
			case n == "idNumber":
				curIDNumber = v
			case n == "id" && strings.HasPrefix(curIDType, dcaPrefix):
				feats = append(feats, feature{currency: strings.TrimPrefix(curIDType, dcaPrefix), value: curIDNumber, party: curEntry, line: line})
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
			text.Reset()
		}
	}
	if root != "Sanctions" && root != "sdnList" {
		return nil, fmt.Errorf("OFAC XML: root element %q: want Sanctions (SDN advanced) or sdnList (sdn.xml)", root)
	}
	col, err := newCollector(name, "ofac", now)
	if err != nil {
		return nil, err
	}
	for _, f := range feats {
		cur := f.currency
		if cur == "" {
			tn, ok := types[f.typeID]
			if !ok || !strings.HasPrefix(tn, dcaPrefix) {
				continue // another feature (a vessel's flag, a birth date…)
			}
			cur = strings.TrimPrefix(tn, dcaPrefix)
		}
		cur = strings.ToUpper(strings.TrimSpace(cur))
		where := fmt.Sprintf("line %d", f.line)
		c, ok := ofacCurrencies[cur]
		if !ok || isTron(f.value) {
			col.feed.Skipped = append(col.feed.Skipped, fmt.Sprintf("%s: %s address %s; not matched", where, cur, f.value))
			continue
		}
		if c == "" {
			c = chain.BTC
			if strings.HasPrefix(f.value, "0x") || strings.HasPrefix(f.value, "0X") {
				c = chain.ETH
			}
		}
		in := Indicator{Kind: KindAddress, Chain: c, Network: "mainnet", Value: f.value, Category: CategorySanctions, Confidence: 100,
			TLP: TLPClear, Description: "OFAC SDN entry " + f.party + ", digital currency address (" + cur + ")",
			Refs: []Ref{{SourceName: "ofac", URL: "https://sanctionssearch.ofac.treas.gov/", ExternalID: f.party}}}
		if !col.add(where, in) {
			break
		}
	}
	if len(col.problems) == 0 && len(col.feed.Indicators) == 0 {
		return nil, ErrEmpty
	}
	return col.done(content)
}
