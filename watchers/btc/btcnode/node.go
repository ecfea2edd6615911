package btcnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/rpcclient"
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
}

// Node is a running btcd.
type Node struct {
	cfg    Config
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, set before exited closes
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

func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts btcd and waits until its RPC server answers.
func Start(ctx context.Context, cfg Config) (*Node, error) {
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
	var err error
	if cfg.RPCPort == 0 {
		if cfg.RPCPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	if cfg.P2PPort == 0 {
		if cfg.P2PPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"--" + cfg.Network, "--datadir=" + filepath.Join(cfg.Dir, "data"), "--logdir=" + filepath.Join(cfg.Dir, "logs"),
		"--configfile=" + filepath.Join(cfg.Dir, "btcd.conf"),
		"--rpcuser=" + cfg.User, "--rpcpass=" + cfg.Password, "--notls", "--rpclisten=127.0.0.1:" + strconv.Itoa(cfg.RPCPort),
		"--listen=127.0.0.1:" + strconv.Itoa(cfg.P2PPort), "--rpcmaxclients=200", "--rpcmaxconcurrentreqs=200", "--nodnsseed",
		"--debuglevel=info", "--utxocachemaxsize=32"}
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
		if logf, err = os.OpenFile(filepath.Join(cfg.Dir, "btcd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, fmt.Errorf("btcnode: %w", err)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("btcnode: start %s: %w", cfg.Bin, err)
	}
	n := &Node{cfg: cfg, cmd: cmd, exited: make(chan struct{}), URL: "http://127.0.0.1:" + strconv.Itoa(cfg.RPCPort)}
	go func() {
		n.err = cmd.Wait()
		close(n.exited)
	}()
	n.client, err = rpcclient.New(&rpcclient.ConnConfig{Host: "127.0.0.1:" + strconv.Itoa(cfg.RPCPort), User: cfg.User, Pass: cfg.Password,
		HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		n.Stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := n.client.GetBlockCount(); err == nil {
			return n, nil
		}
		select {
		case <-n.exited:
			return nil, fmt.Errorf("btcnode: btcd exited during start-up (%w); see %s", n.err, filepath.Join(cfg.Dir, "btcd.out"))
		case <-ctx.Done():
			n.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Stop()
			return nil, errors.New("btcnode: btcd RPC not answering after 60s")
		}
	}
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
func (n *Node) Pid() int { return n.cmd.Process.Pid }

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
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// Kill stops btcd abruptly, as a crash would.
func (n *Node) Kill() {
	if n.client != nil {
		n.client.Shutdown()
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}
