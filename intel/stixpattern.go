package intel

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// A parser of the STIX 2.1 patterning language (section 9 of the
// specification): the whole grammar — observation expressions joined by
// AND, OR and FOLLOWEDBY with WITHIN/REPEATS/START-STOP qualifiers,
// comparison expressions with AND/OR and parentheses, every comparison
// operator with NOT, object paths with quoted and list components, and
// string, number, boolean, timestamp, hex and binary literals. cordon
// matches the subset that names cryptocurrency wallets; walletValues says
// why a pattern is outside it.

type tokKind int

const (
	tEOF tokKind = iota
	tPunct
	tWord
	tString
	tNumber
	tTyped // t'…', h'…', b'…'
)

type token struct {
	kind tokKind
	text string // punctuation, keyword/identifier, decoded string, number, typed literal body
	pre  byte   // prefix of a typed literal
	pos  int
}

type lexer2 struct {
	s   string
	i   int
	err error
}

func (l *lexer2) next() token {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t' || l.s[l.i] == '\n' || l.s[l.i] == '\r') {
		l.i++
	}
	if l.i >= len(l.s) {
		return token{kind: tEOF, pos: l.i}
	}
	start := l.i
	c := l.s[l.i]
	switch {
	case c == '!' || c == '<' || c == '>':
		l.i++
		if l.i < len(l.s) && l.s[l.i] == '=' {
			l.i++
		} else if c == '!' {
			l.err = fmt.Errorf("position %d: '!' must be followed by '='", start)
			return token{kind: tEOF, pos: start}
		}
		return token{kind: tPunct, text: l.s[start:l.i], pos: start}
	case strings.IndexByte("[](),:=.*", c) >= 0:
		l.i++
		return token{kind: tPunct, text: string(c), pos: start}
	case c == '\'':
		s, ok := l.quoted()
		if !ok {
			return token{kind: tEOF, pos: start}
		}
		return token{kind: tString, text: s, pos: start}
	case (c == 't' || c == 'h' || c == 'b') && l.i+1 < len(l.s) && l.s[l.i+1] == '\'':
		l.i++
		s, ok := l.quoted()
		if !ok {
			return token{kind: tEOF, pos: start}
		}
		return token{kind: tTyped, text: s, pre: c, pos: start}
	case c == '-' || c == '+' || (c >= '0' && c <= '9'):
		l.i++
		for l.i < len(l.s) && (l.s[l.i] >= '0' && l.s[l.i] <= '9' || l.s[l.i] == '.' || l.s[l.i] == 'e' || l.s[l.i] == 'E' ||
			((l.s[l.i] == '-' || l.s[l.i] == '+') && (l.s[l.i-1] == 'e' || l.s[l.i-1] == 'E'))) {
			l.i++
		}
		text := l.s[start:l.i]
		if strings.Trim(text, "+-.eE") == "" {
			l.err = fmt.Errorf("position %d: malformed number %q", start, text)
			return token{kind: tEOF, pos: start}
		}
		return token{kind: tNumber, text: text, pos: start}
	case c == '_' || c < 0x80 && unicode.IsLetter(rune(c)):
		for l.i < len(l.s) && (l.s[l.i] == '_' || l.s[l.i] == '-' || l.s[l.i] < 0x80 && (unicode.IsLetter(rune(l.s[l.i])) || unicode.IsDigit(rune(l.s[l.i])))) {
			l.i++
		}
		return token{kind: tWord, text: l.s[start:l.i], pos: start}
	}
	l.err = fmt.Errorf("position %d: unexpected character %q", start, c)
	return token{kind: tEOF, pos: start}
}

// quoted reads a '…' string whose only escapes are \' and \\.
func (l *lexer2) quoted() (string, bool) {
	start := l.i
	l.i++ // opening quote
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch c {
		case '\'':
			l.i++
			return b.String(), true
		case '\\':
			if l.i+1 >= len(l.s) || (l.s[l.i+1] != '\'' && l.s[l.i+1] != '\\') {
				l.err = fmt.Errorf("position %d: only \\' and \\\\ are escapes in a string", l.i)
				return "", false
			}
			b.WriteByte(l.s[l.i+1])
			l.i += 2
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	l.err = fmt.Errorf("position %d: unterminated string", start)
	return "", false
}

// Pattern AST.
type (
	patNode interface{ isPat() }
	// obsJoin joins two observation expressions.
	obsJoin struct {
		op   string // OR, AND, FOLLOWEDBY
		l, r patNode
	}
	// obsGroup is [comparison] or (observations), with qualifiers.
	obsGroup struct {
		cmp   patNode // a comparison node, or nil
		inner patNode // observation node, or nil
		quals []string
	}
	cmpJoin struct {
		op   string // AND, OR
		l, r patNode
	}
	cmpTest struct {
		path   string // object-type:path as written, quotes removed
		not    bool
		op     string // =, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET, EXISTS
		values []token
	}
)

func (obsJoin) isPat()  {}
func (obsGroup) isPat() {}
func (cmpJoin) isPat()  {}
func (cmpTest) isPat()  {}

type patParser struct {
	lx  *lexer2
	tok token
}

func (p *patParser) advance() { p.tok = p.lx.next() }

func (p *patParser) fail(format string, args ...any) error {
	if p.lx.err != nil {
		return p.lx.err
	}
	return fmt.Errorf("position %d: %s", p.tok.pos, fmt.Sprintf(format, args...))
}

func (p *patParser) isWord(w string) bool {
	return p.tok.kind == tWord && strings.EqualFold(p.tok.text, w)
}
func (p *patParser) isPunct(s string) bool {
	return p.tok.kind == tPunct && p.tok.text == s
}

// parsePattern parses a STIX 2.1 pattern.
func parsePattern(s string) (patNode, error) {
	if len(s) > 1<<20 {
		return nil, errors.New("pattern over 1 MiB")
	}
	p := &patParser{lx: &lexer2{s: s}}
	p.advance()
	n, err := p.observations(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF || p.lx.err != nil {
		return nil, p.fail("unexpected %q after the pattern", p.tok.text)
	}
	return n, nil
}

const maxDepth = 100

// observations: obs joined by FOLLOWEDBY (loosest), OR, and AND
// (tightest), left-associative, as in the specification's grammar.
func (p *patParser) observations(depth int) (patNode, error) { return p.obsLevel(depth, 0) }

var obsOps = []string{"FOLLOWEDBY", "OR", "AND"} // loosest first (the specification's grammar)

func (p *patParser) obsLevel(depth, level int) (patNode, error) {
	if level == len(obsOps) {
		return p.observation(depth)
	}
	l, err := p.obsLevel(depth, level+1)
	if err != nil {
		return nil, err
	}
	for p.isWord(obsOps[level]) {
		p.advance()
		r, err := p.obsLevel(depth, level+1)
		if err != nil {
			return nil, err
		}
		l = obsJoin{op: obsOps[level], l: l, r: r}
	}
	return l, nil
}

func (p *patParser) observation(depth int) (patNode, error) {
	if depth > maxDepth {
		return nil, p.fail("nested too deeply")
	}
	var g obsGroup
	switch {
	case p.isPunct("["):
		p.advance()
		c, err := p.comparison(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isPunct("]") {
			return nil, p.fail("expected ']'")
		}
		p.advance()
		g.cmp = c
	case p.isPunct("("):
		p.advance()
		in, err := p.observations(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isPunct(")") {
			return nil, p.fail("expected ')'")
		}
		p.advance()
		g.inner = in
	default:
		return nil, p.fail("expected '[' or '(' to start an observation expression")
	}
	for {
		switch {
		case p.isWord("WITHIN"):
			p.advance()
			if p.tok.kind != tNumber {
				return nil, p.fail("WITHIN needs a number of SECONDS")
			}
			p.advance()
			if !p.isWord("SECONDS") {
				return nil, p.fail("expected SECONDS")
			}
			p.advance()
			g.quals = append(g.quals, "WITHIN")
		case p.isWord("REPEATS"):
			p.advance()
			if p.tok.kind != tNumber {
				return nil, p.fail("REPEATS needs a count")
			}
			p.advance()
			if !p.isWord("TIMES") {
				return nil, p.fail("expected TIMES")
			}
			p.advance()
			g.quals = append(g.quals, "REPEATS")
		case p.isWord("START"):
			p.advance()
			if p.tok.kind != tTyped || p.tok.pre != 't' {
				return nil, p.fail("START needs a t'…' timestamp")
			}
			p.advance()
			if !p.isWord("STOP") {
				return nil, p.fail("expected STOP")
			}
			p.advance()
			if p.tok.kind != tTyped || p.tok.pre != 't' {
				return nil, p.fail("STOP needs a t'…' timestamp")
			}
			p.advance()
			g.quals = append(g.quals, "START/STOP")
		default:
			return g, nil
		}
	}
}

// comparison: and (OR and)*; and: test (AND test)*.
func (p *patParser) comparison(depth int) (patNode, error) {
	l, err := p.cmpAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("OR") {
		p.advance()
		r, err := p.cmpAnd(depth)
		if err != nil {
			return nil, err
		}
		l = cmpJoin{op: "OR", l: l, r: r}
	}
	return l, nil
}

func (p *patParser) cmpAnd(depth int) (patNode, error) {
	l, err := p.test(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("AND") {
		p.advance()
		r, err := p.test(depth)
		if err != nil {
			return nil, err
		}
		l = cmpJoin{op: "AND", l: l, r: r}
	}
	return l, nil
}

func (p *patParser) test(depth int) (patNode, error) {
	if depth > maxDepth {
		return nil, p.fail("nested too deeply")
	}
	if p.isPunct("(") {
		p.advance()
		c, err := p.comparison(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isPunct(")") {
			return nil, p.fail("expected ')'")
		}
		p.advance()
		return c, nil
	}
	var t cmpTest
	if p.isWord("EXISTS") {
		p.advance()
		path, err := p.objectPath()
		if err != nil {
			return nil, err
		}
		return cmpTest{path: path, op: "EXISTS"}, nil
	}
	path, err := p.objectPath()
	if err != nil {
		return nil, err
	}
	t.path = path
	if p.isWord("NOT") {
		t.not = true
		p.advance()
	}
	switch {
	case p.tok.kind == tPunct && (p.tok.text == "=" || p.tok.text == "!=" || p.tok.text == "<" || p.tok.text == "<=" ||
		p.tok.text == ">" || p.tok.text == ">="):
		t.op = p.tok.text
	case p.tok.kind == tWord && strings.ToUpper(p.tok.text) == "IN":
		t.op = "IN"
	case p.tok.kind == tWord && (strings.EqualFold(p.tok.text, "LIKE") || strings.EqualFold(p.tok.text, "MATCHES") ||
		strings.EqualFold(p.tok.text, "ISSUBSET") || strings.EqualFold(p.tok.text, "ISSUPERSET")):
		t.op = strings.ToUpper(p.tok.text)
	default:
		return nil, p.fail("expected a comparison operator after %s", path)
	}
	p.advance()
	if t.op == "IN" {
		if !p.isPunct("(") {
			return nil, p.fail("IN needs a ( … ) set")
		}
		p.advance()
		for {
			if !isLiteral(p.tok) {
				return nil, p.fail("expected a literal in the set")
			}
			t.values = append(t.values, p.tok)
			p.advance()
			if p.isPunct(",") {
				p.advance()
				continue
			}
			if !p.isPunct(")") {
				return nil, p.fail("expected ',' or ')' in the set")
			}
			p.advance()
			break
		}
		return t, nil
	}
	if !isLiteral(p.tok) {
		return nil, p.fail("expected a literal after %s", t.op)
	}
	t.values = []token{p.tok}
	p.advance()
	return t, nil
}

func isLiteral(t token) bool {
	return t.kind == tString || t.kind == tNumber || t.kind == tTyped ||
		t.kind == tWord && (strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false"))
}

// objectPath: object-type ':' component ( '.' component | '[' index ']' )*
func (p *patParser) objectPath() (string, error) {
	if p.tok.kind != tWord {
		return "", p.fail("expected an object type")
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(p.tok.text))
	p.advance()
	if !p.isPunct(":") {
		return "", p.fail("expected ':' after the object type")
	}
	b.WriteByte(':')
	p.advance()
	first := true
	for {
		switch {
		case first || p.isPunct("."):
			if !first {
				p.advance()
				b.WriteByte('.')
			}
			first = false
			if p.tok.kind != tWord && p.tok.kind != tString {
				return "", p.fail("expected a property name")
			}
			b.WriteString(p.tok.text)
			p.advance()
		case p.isPunct("["):
			p.advance()
			if !p.isPunct("*") && p.tok.kind != tNumber {
				return "", p.fail("expected an index or * in [ ]")
			}
			b.WriteString("[" + p.tok.text + "]")
			p.advance()
			if !p.isPunct("]") {
				return "", p.fail("expected ']'")
			}
			p.advance()
		default:
			return b.String(), nil
		}
	}
}

// walletPaths are the object paths cordon reads a wallet address from.
var walletPaths = map[string]bool{"cryptocurrency-wallet:value": true, "cryptocurrency-wallet:address": true}

// walletValues returns the wallet values a pattern matches on when it is
// within the supported subset — comparisons of a wallet path for
// equality, or IN a set, joined by OR at any level — or why it is not.
func walletValues(n patNode) ([]string, error) {
	switch n := n.(type) {
	case obsJoin:
		if n.op != "OR" {
			return nil, fmt.Errorf("observations joined by %s", n.op)
		}
		return joinValues(n.l, n.r)
	case obsGroup:
		if len(n.quals) > 0 {
			return nil, fmt.Errorf("%s qualifier", n.quals[0])
		}
		if n.inner != nil {
			return walletValues(n.inner)
		}
		return walletValues(n.cmp)
	case cmpJoin:
		if n.op != "OR" {
			return nil, errors.New("comparisons joined by AND")
		}
		return joinValues(n.l, n.r)
	case cmpTest:
		if !walletPaths[n.path] {
			return nil, fmt.Errorf("object path %s (cordon matches cryptocurrency-wallet:value)", n.path)
		}
		if n.not || (n.op != "=" && n.op != "IN") {
			op := n.op
			if n.not {
				op = "NOT " + op
			}
			return nil, fmt.Errorf("operator %s", op)
		}
		var out []string
		for _, v := range n.values {
			if v.kind != tString {
				return nil, errors.New("a wallet value that is not a string")
			}
			out = append(out, v.text)
		}
		return out, nil
	}
	return nil, errors.New("unknown pattern node")
}

func joinValues(l, r patNode) ([]string, error) {
	a, err := walletValues(l)
	if err != nil {
		return nil, err
	}
	b, err := walletValues(r)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}
