package btc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/follow"
)

// EndpointConfig names one node's JSON-RPC endpoint: its URL and either a
// user and password or the node's cookie file. The URL and the password
// are secret references in the config file; code that builds one uses
// config.SecretValue.
type EndpointConfig struct {
	// Name labels the endpoint in logs and metrics; the URL is never logged.
	Name string `yaml:"name"`
	// URL is http://host:port (or https://). User and password in the URL
	// are used when User is empty.
	URL        config.Secret `yaml:"url"`
	User       string        `yaml:"user"`
	Password   config.Secret `yaml:"password"`
	CookieFile string        `yaml:"cookie_file"`
}

// MaxReplyHexBytes bounds a getblock reply the watcher accepts: the hex of
// the largest possible block.
const MaxReplyHexBytes = 2*MaxBlockBytes + 2

// conn is the Bitcoin side of one endpoint: a set of rpcclient clients.
// rpcclient sends one HTTP POST client's requests one after the other, so
// parallel fetches need one client each; a client is lent to one call at a
// time and comes back only once its reply is in, even when the caller gave
// up on it earlier.
type conn struct {
	idle chan *rpcclient.Client
	all  []*rpcclient.Client
}

// ConnConfig is rpcclient's configuration of an endpoint (HTTP POST mode;
// user and password, from the URL too, or the node's cookie file) and the
// endpoint's name for logs.
func ConnConfig(ec EndpointConfig) (*rpcclient.ConnConfig, string, error) {
	u, err := url.Parse(ec.URL.Value())
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, "", errors.New("invalid URL: want http://host:port or https://host:port")
	}
	cc := &rpcclient.ConnConfig{Host: u.Host + strings.TrimSuffix(u.Path, "/"), User: ec.User, Pass: ec.Password.Value(),
		CookiePath: ec.CookieFile, HTTPPostMode: true, DisableTLS: u.Scheme == "http"}
	if cc.User == "" && u.User != nil {
		cc.User = u.User.Username()
		cc.Pass, _ = u.User.Password()
		u.User = nil
		cc.Host = u.Host + strings.TrimSuffix(u.Path, "/")
	}
	if cc.Pass == "" && cc.CookiePath == "" {
		return nil, "", errors.New("no credentials: set a user and password or the node's cookie file")
	}
	name := ec.Name
	if name == "" {
		name = u.Hostname()
	}
	return cc, name, nil
}

func newConn(ec EndpointConfig, clients int) (*conn, string, error) {
	cc, name, err := ConnConfig(ec)
	if err != nil {
		return nil, "", err
	}
	c := &conn{idle: make(chan *rpcclient.Client, clients)}
	for range clients {
		cfg := *cc
		cl, err := rpcclient.New(&cfg, nil)
		if err != nil {
			c.close()
			return nil, "", fmt.Errorf("rpc client: %w", err)
		}
		c.all = append(c.all, cl)
		c.idle <- cl
	}
	return c, name, nil
}

func (c *conn) close() {
	for _, cl := range c.all {
		cl.Shutdown()
	}
}

// call makes one JSON-RPC call and returns its raw result.
func (c *conn) call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("%s: encode parameter %d: %w", method, i, err)
		}
		raw[i] = b
	}
	var cl *rpcclient.Client
	select {
	case cl = <-c.idle:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: every client of the endpoint is busy: %w", method, ctx.Err())
	}
	type reply struct {
		res json.RawMessage
		err error
	}
	done := make(chan reply, 1)
	fut := cl.RawRequestAsync(method, raw)
	go func() {
		res, err := fut.Receive()
		done <- reply{res, err}
		c.idle <- cl
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, classify(method, r.err)
		}
		return r.res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// classify turns the node's "no such block" replies into follow.ErrNotFound.
func classify(method string, err error) error {
	var re *btcjson.RPCError
	if errors.As(err, &re) {
		msg := strings.ToLower(re.Message)
		if re.Code == btcjson.ErrRPCBlockNotFound || strings.Contains(msg, "out of range") || strings.Contains(msg, "not found") {
			return fmt.Errorf("%s: %s: %w", method, re.Message, follow.ErrNotFound)
		}
	}
	return fmt.Errorf("%s: %w", method, err)
}

// decodeHexString decodes a JSON string of hex digits into bytes without an
// intermediate Go string, refusing anything longer than limit characters.
func decodeHexString(what string, raw json.RawMessage, limit int) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, fmt.Errorf("%s: want a hex string, got %.40q", what, raw)
	}
	s := raw[1 : len(raw)-1]
	if len(s) > limit {
		return nil, fmt.Errorf("%s: %d hex characters, more than the %d allowed", what, len(s), limit)
	}
	out := make([]byte, hex.DecodedLen(len(s)))
	if _, err := hex.Decode(out, s); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// decodeUint decodes a JSON non-negative integer.
func decodeUint(what string, raw json.RawMessage) (uint64, error) {
	var v uint64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%s: want a non-negative integer, got %.40q", what, raw)
	}
	return v, nil
}

// decodeHash decodes a JSON block hash string.
func decodeHash(what string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || len(s) != 64 {
		return "", fmt.Errorf("%s: want a 64-digit hex hash, got %.80q", what, raw)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("%s: want a 64-digit hex hash, got %.80q", what, raw)
	}
	return strings.ToLower(s), nil
}
