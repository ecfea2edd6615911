package btcnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/rpcclient"

	"github.com/cordonhq/cordon/internal/proc"
)

// BtcdVersion is the btcd release the Makefile installs into bin/.
const BtcdVersion = "v0.26.2"

// Config configures a node.
type Config struct {
	// Bin is the btcd executable (see FindBtcd).
	Bin string
	// Dir holds the node's chain, logs and configuration.
	Dir string
	// Network is regtest (default) or simnet. btcd deletes a regtest chain
	// when it starts; a simnet chain survives restarts.
	Network string
	// RPCPort and P2PPort on 127.0.0.1; 0 picks free ports.
	RPCPort int
	P2PPort int
	// MiningAddr receives the coinbase of blocks mined with Generate.
	MiningAddr string
	// User and Password of the RPC server (default: cordon / a random
	// password kept in Dir).
	User     string
	Password string
	// Log receives btcd's standard output and error (nil: a file in Dir).
	Log *os.File
	// TxIndex keeps btcd's transaction index (--txindex), so that
	// getrawtransaction finds any transaction of the chain (what a
	// wallet's builder fetches its previous transactions with).
	TxIndex bool
}

// Node is a running btcd.
type Node struct {
	cfg    Config
	proc   *proc.Process
	client *rpcclient.Client
	URL    string
}

// FindBtcd looks for btcd: $CORDON_BTCD, next to the running executable,
// in bin/ of the enclosing Go module, then on PATH.
func FindBtcd() (string, error) {
	if p := os.Getenv("CORDON_BTCD"); p != "" {
		return p, nil
	}
	var cands []string
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "btcd"))
	}
	if dir, err := os.Getwd(); err == nil {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				cands = append(cands, filepath.Join(d, "bin", "btcd"))
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	if p, err := exec.LookPath("btcd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("btcd not found (looked at $CORDON_BTCD, %s and PATH): install it with `make btcd` "+
		"(go install github.com/btcsuite/btcd@%s into bin/)", strings.Join(cands, ", "), BtcdVersion)
}

// Start starts btcd and waits until its RPC server answers. With ports
// it picked itself (0 in cfg), a btcd that exits during start-up is
// started again on other ports, twice at most: another process may take
// a free port between the pick and btcd's listen.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	picked := cfg.RPCPort == 0 || cfg.P2PPort == 0
	for attempt := 1; ; attempt++ {
		n, err := start(ctx, cfg)
		if err == nil || !picked || attempt == 3 || !errors.Is(err, proc.ErrExited) || ctx.Err() != nil {
			return n, err
		}
	}
}

func start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Network == "" {
		cfg.Network = "regtest"
	}
	if cfg.Network != "regtest" && cfg.Network != "simnet" {
		return nil, fmt.Errorf("btcnode: network %q: want regtest or simnet", cfg.Network)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("btcnode: %w", err)
	}
	if cfg.User == "" {
		cfg.User = "cordon"
	}
	if cfg.Password == "" {
		pw, err := password(cfg.Dir)
		if err != nil {
			return nil, err
		}
		cfg.Password = pw
	}
	if err := proc.FreePorts(&cfg.RPCPort, &cfg.P2PPort); err != nil {
		return nil, fmt.Errorf("btcnode: %w", err)
	}
	args := []string{"--" + cfg.Network, "--datadir=" + filepath.Join(cfg.Dir, "data"), "--logdir=" + filepath.Join(cfg.Dir, "logs"),
		"--configfile=" + filepath.Join(cfg.Dir, "btcd.conf"),
		"--rpcuser=" + cfg.User, "--rpcpass=" + cfg.Password, "--notls", "--rpclisten=127.0.0.1:" + strconv.Itoa(cfg.RPCPort),
		"--listen=127.0.0.1:" + strconv.Itoa(cfg.P2PPort), "--rpcmaxclients=200", "--rpcmaxconcurrentreqs=200", "--nodnsseed",
		"--debuglevel=info", "--utxocachemaxsize=32"}
	if cfg.TxIndex {
		args = append(args, "--txindex")
	}
	if cfg.MiningAddr != "" {
		args = append(args, "--miningaddr="+cfg.MiningAddr)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "btcd.conf"), nil, 0o600); err != nil {
		return nil, fmt.Errorf("btcnode: %w", err)
	}
	// The node outlives ctx (which bounds start-up only); Stop ends it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), cfg.Bin, args...) //nolint:gosec // the btcd binary the caller chose (FindBtcd)
	logf := cfg.Log
	if logf == nil {
		var err error
		if logf, err = os.OpenFile(filepath.Join(cfg.Dir, "btcd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, fmt.Errorf("btcnode: %w", err)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("btcnode: %w", err)
	}
	n := &Node{cfg: cfg, proc: p, URL: "http://127.0.0.1:" + strconv.Itoa(cfg.RPCPort)}
	n.client, err = rpcclient.New(&rpcclient.ConnConfig{Host: "127.0.0.1:" + strconv.Itoa(cfg.RPCPort), User: cfg.User, Pass: cfg.Password,
		HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		n.Stop()
		return nil, err
	}
	err = p.WaitReady(ctx, 60*time.Second, func() bool {
		_, err := n.client.GetBlockCount()
		return err == nil
	})
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("btcnode: btcd RPC: %w; see %s", err, filepath.Join(cfg.Dir, "btcd.out"))
	}
	return n, nil
}

func password(dir string) (string, error) {
	path := filepath.Join(dir, "rpc.password")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var buf [16]byte
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Read(buf[:]); err != nil {
		return "", err
	}
	pw := fmt.Sprintf("%x", buf)
	return pw, os.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// User is the RPC user.
func (n *Node) User() string { return n.cfg.User }

// Password is the RPC password.
func (n *Node) Password() string { return n.cfg.Password }

// Pid is the btcd process id.
func (n *Node) Pid() int { return n.proc.Pid() }

// P2PAddr is the node's peer-to-peer listen address.
func (n *Node) P2PAddr() string { return "127.0.0.1:" + strconv.Itoa(n.cfg.P2PPort) }

// Client is an RPC client of the node (HTTP POST mode).
func (n *Node) Client() *rpcclient.Client { return n.client }

// Call makes a raw RPC call.
func (n *Node) Call(method string, params ...any) (json.RawMessage, error) {
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	return n.client.RawRequest(method, raw)
}

// Stop stops btcd (SIGINT, then SIGKILL after 10 s) and waits for it.
func (n *Node) Stop() {
	if n.client != nil {
		n.client.Shutdown()
	}
	n.proc.Stop(os.Interrupt, 10*time.Second)
}

// Kill stops btcd abruptly, as a crash would.
func (n *Node) Kill() {
	if n.client != nil {
		n.client.Shutdown()
	}
	n.proc.Kill()
}
