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
