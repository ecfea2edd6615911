package risk

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// cache keeps the counterparties of recently assessed destinations, least
// recently used first out, each answer for ttl. Failures are not kept: the
// next assessment asks again.
type cache struct {
	src     Counterparties
	limit   int
	timeout time.Duration
	ttl     time.Duration
	size    int
	now     func() time.Time

	mu sync.Mutex
	ll *list.List // of *cached, most recent at the front
	m  map[string]*list.Element
}

type cached struct {
	key     string
	list    []string
	fetched time.Time
}

func newCache(src Counterparties, cfg CounterpartiesConfig) *cache {
	return &cache{src: src, limit: cfg.Limit, timeout: cfg.Timeout, ttl: cfg.CacheTTL, size: cfg.CacheSize, now: time.Now,
		ll: list.New(), m: map[string]*list.Element{}}
}

type cacheOnlyKey struct{}

// CacheOnly marks ctx so that an assessment under it reads the
// counterparties from the cache only: a miss is an unknown at once,
// never a lookup. The gate's one loop assesses so, after a warm-up
// outside it.
func CacheOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, cacheOnlyKey{}, true)
}

func (c *cache) lookup(ctx context.Context, ch chain.Chain, network, addr string) ([]string, error) {
	key := string(ch) + "/" + network + "/" + addr
	now := c.now()
	c.mu.Lock()
	if el, ok := c.m[key]; ok {
		e := el.Value.(*cached)
		if now.Sub(e.fetched) < c.ttl {
			c.ll.MoveToFront(el)
			c.mu.Unlock()
			return e.list, nil
		}
		c.ll.Remove(el)
		delete(c.m, key)
	}
	c.mu.Unlock()
	if ctx.Value(cacheOnlyKey{}) != nil {
		return nil, fmt.Errorf("counterparties of %s: not in the cache (cache only)", addr)
	}

	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	list, err := c.src.Counterparties(qctx, ch, network, addr, c.limit)
	if err == nil && qctx.Err() != nil {
		err = qctx.Err() // an answer cut short is no answer
	}
	if err != nil {
		return nil, fmt.Errorf("counterparties of %s: %w", addr, err)
	}
	if len(list) > c.limit {
		list = list[:c.limit]
	}
	if c.size == 0 || c.ttl == 0 {
		return list, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok { // a concurrent lookup stored it meanwhile
		c.ll.Remove(el)
	}
	c.m[key] = c.ll.PushFront(&cached{key: key, list: list, fetched: now})
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*cached).key)
	}
	return list, nil
}

// len is how many answers the cache holds.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
