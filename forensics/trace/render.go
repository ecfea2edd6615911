package trace

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// Formats are the output formats Write knows.
var Formats = []string{"table", "json", "dot", "html"}

// Write renders res in format (one of Formats).
func Write(w io.Writer, res *Result, format string) error {
	switch format {
	case "table", "":
		return writeTable(w, res)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "dot":
		return writeDOT(w, res)
	case "html":
		return writeHTML(w, res)
	}
	return fmt.Errorf("trace: format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// FormatAmount shows a base-unit amount of asset: the chain's coin in
// whole units with its symbol, a token in base units with its contract.
func FormatAmount(c chain.Chain, asset, amount string) string {
	if asset != chain.AssetNative && asset != "" {
		return amount + " ×" + short(asset)
	}
	v, ok := new(big.Int).SetString(amount, 10)
	if !ok || v.Sign() < 0 {
		return amount + " " + sym(c)
	}
	return chain.FormatCoin(c, chain.AmountFromBig(v))
}

func sym(c chain.Chain) string {
	s, _ := chain.Coin(c)
	return s
}

func short(a string) string {
	if len(a) <= 16 {
		return a
	}
	return a[:10] + "…" + a[len(a)-6:]
}

func (r *Result) nodeNote(addr string) string {
	for _, n := range r.Nodes {
		if n.Address != addr {
			continue
		}
		switch {
		case n.Sink != nil:
			return "stop: " + n.Sink.Kind + " " + n.Sink.Label
		case n.Hub:
			return "hub: not followed"
		}
	}
	return ""
}

func writeTable(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "trace %s/%s %s from %s, %d hops", r.Chain, r.Network, r.Direction, strings.Join(r.From, ", "), r.Hops)
	if r.Since != nil {
		fmt.Fprintf(w, ", since %s", r.Since.Format(time.RFC3339))
	}
	if r.Until != nil {
		fmt.Fprintf(w, ", until %s", r.Until.Format(time.RFC3339))
	}
	fmt.Fprintf(w, ": %d addresses, %d transfers\n", len(r.Nodes), len(r.Edges))
	if len(r.Edges) == 0 {
		_, err := fmt.Fprintln(w, "no transfers found from these addresses in the window")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOP\tFROM\tTO\tAMOUNT\tTX\tBLOCK\tTIME\tNOTE")
	for _, e := range r.Edges {
		far := e.To
		if r.Direction == "backward" {
			far = e.From
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Hop, e.From, e.To, FormatAmount(r.Chain, e.Asset, e.Amount),
			e.TxHash, e.BlockNumber, e.Time.Format(time.RFC3339), r.nodeNote(far))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Truncated {
		fmt.Fprintln(w, "truncated: the edge limit was reached; narrow the window or raise --max-edges")
	}
	if r.Unresolved > 0 {
		fmt.Fprintf(w, "%d inputs spend outputs older than the loaded range: their senders are unknown\n", r.Unresolved)
	}
	return nil
}

func writeDOT(w io.Writer, r *Result) error {
	var b bytes.Buffer
	b.WriteString("digraph trace {\n  rankdir=LR;\n  node [shape=box, fontname=monospace];\n")
	for _, n := range r.Nodes {
		label := short(n.Address) + `\nhop ` + strconv.Itoa(n.Hop)
		attrs := ""
		switch {
		case n.Hop == 0:
			attrs = `, style=filled, fillcolor="#9ecae1"`
		case n.Sink != nil:
			label += `\n` + n.Sink.Kind + ": " + n.Sink.Label
			attrs = `, style=filled, fillcolor="#fc9272"`
		case n.Hub:
			label += `\nhub`
			attrs = `, style=filled, fillcolor="#d9d9d9"`
		}
		fmt.Fprintf(&b, "  %s [label=%s%s];\n", strconv.Quote(n.Address), strconv.Quote(label), attrs)
	}
	for _, e := range r.Edges {
		label := FormatAmount(r.Chain, e.Asset, e.Amount) + `\n` + short(e.TxHash)
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", strconv.Quote(e.From), strconv.Quote(e.To), strconv.Quote(label))
	}
	b.WriteString("}\n")
	_, err := w.Write(b.Bytes())
	return err
}

//go:embed graph.html
var graphPage string

// writeHTML writes a self-contained page (no network access) drawing the
// trace as an interactive graph.
func writeHTML(w io.Writer, r *Result) error {
	data, err := json.Marshal(r) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	title := fmt.Sprintf("cordon trace %s/%s %s from %s", r.Chain, r.Network, r.Direction, strings.Join(r.From, ", "))
	page := strings.Replace(graphPage, "/*TRACE_DATA*/null", string(data), 1)
	page = strings.Replace(page, "<title>cordon trace</title>", "<title>"+htmlEscape(title)+"</title>", 1)
	_, err = io.WriteString(w, page)
	return err
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}
