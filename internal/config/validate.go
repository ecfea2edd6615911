package config

import (
	"errors"
	"fmt"
)

// Problems collects every problem of a configuration, each naming its key,
// so that one run reports them all.
type Problems struct{ errs []error }

// Add records a problem at key ("kafka.brokers[1]").
func (p *Problems) Add(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// Err joins the problems; nil when there is none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// OrDefault sets *p to v when it holds its type's zero value.
func OrDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Name checks a name operators give in config that ends up in keys,
// consumer groups and metric labels: 1 to 64 lowercase letters, digits,
// _ and -.
func Name(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q: want 1 to 64 characters", s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%q: want lowercase letters, digits, _ and -", s)
		}
	}
	return nil
}
