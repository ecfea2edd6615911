package taxii

import (
	"strconv"
	"strings"
	"time"
)

// splitQuoted splits s at sep outside quoted strings (RFC 9110 5.6.4).
func splitQuoted(s string, sep byte) []string {
	var out []string
	in, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// param splits name=value, the name lowercased, the value unquoted.
func param(s string) (name, value string) {
	name, value, _ = strings.Cut(s, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	value = strings.TrimSpace(value)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(value)-1; i++ {
			if value[i] == '\\' && i+1 < len(value)-1 {
				i++
			}
			b.WriteByte(value[i])
		}
		value = b.String()
	}
	return name, value
}

// acceptsTAXII tells whether the Accept header lines allow the TAXII 2.1
// media type: a media range application/taxii+json (any case, spaces
// allowed) whose version parameter, if any, is 2.1 and whose q is not 0.
// Wildcards (*/*, application/*) do not count: TAXII 2.1 requires
// clients to name its media type.
func acceptsTAXII(lines []string) bool {
	for _, line := range lines {
		for _, rng := range splitQuoted(line, ',') {
			parts := splitQuoted(rng, ';')
			if !strings.EqualFold(strings.TrimSpace(parts[0]), "application/taxii+json") {
				continue
			}
			ok := true
			for _, p := range parts[1:] {
				name, value := param(p)
				if name == "q" {
					q, err := strconv.ParseFloat(value, 64)
					ok = ok && err == nil && q > 0 && q <= 1
					break // what follows q are accept extensions
				}
				if name == "version" && value != "2.1" {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// preferWait returns the wait preference of the Prefer header lines
// (RFC 7240: wait=N, N seconds): ok false when there is none, or it is
// not a non-negative integer (a preference not understood is ignored).
func preferWait(lines []string) (time.Duration, bool) {
	for _, line := range lines {
		for _, pref := range splitQuoted(line, ',') {
			name, value := param(splitQuoted(pref, ';')[0])
			if name != "wait" {
				continue
			}
			n, err := strconv.ParseUint(value, 10, 31)
			if err != nil {
				return 0, false
			}
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}
