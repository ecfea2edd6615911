package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cordonhq/cordon/config"
	devkeys "github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/plugins/pkcs11/hsmtest"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/pluginhost"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// devSigning is the dev system's signing stage: the plugins, the hot
// wallets (an Ethereum account on the dev key; a 2-of-3 P2WSH Bitcoin
// wallet across the SoftHSM2 token, the dev key and the threshold key,
// each replaced by another dev key when it cannot run here) and the
// signer's own file.
type devSigning struct {
	file    config.SignerFile
	wallets wallet.Config
	// kinds says which plugin holds each of the Bitcoin wallet's keys.
	kinds []string
}

// devPluginNames are the plugin binaries cordon dev runs.
var devPluginNames = []string{"devkey", "pkcs11", "threshold"}

// findDevPlugin is the binary of plugin name: cordon-NAME next to the
// cordon binary or in the source tree's bin/ (make build puts them
// there), else built from the source tree into dir with the go command.
func findDevPlugin(ctx context.Context, dir, name string, log *slog.Logger) (string, error) {
	file := "cordon-" + name
	var cands []string
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), file))
	}
	root := sourceRoot()
	if root != "" {
		cands = append(cands, filepath.Join(root, "bin", file))
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	goBin, err := exec.LookPath("go")
	if root == "" || err != nil {
		return "", fmt.Errorf("no %s binary (looked at %s; make build puts it in bin/)", file, strings.Join(cands, ", "))
	}
	out := filepath.Join(dir, file)
	log.Info("building a signer plugin", "plugin", name, "out", out)
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./plugins/"+name) //nolint:gosec // the go command on the source tree
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./plugins/%s: %w: %s", name, err, b)
	}
	return out, nil
}

// sourceRoot is cordon's source tree when this process runs from it
// (go.mod of the module, walking up from the working directory).
func sourceRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/cordonhq/cordon\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // a plugin binary we found or built
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// newDevSigning sets up the plugins' keys under dir/signer (kept across
// restarts) and the wallets. Without the dev-key plugin it returns nil:
// cordon dev runs without the signing stage.
func newDevSigning(ctx context.Context, dir string, cfg *config.Config, btcOn bool, log *slog.Logger) (*devSigning, error) {
	sdir := filepath.Join(dir, "signer")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, n := range devPluginNames {
		p, err := findDevPlugin(ctx, sdir, n, log)
		if err != nil {
			if n == "devkey" {
				log.Warn("signing disabled: no dev-key plugin", "reason", err)
				return nil, nil
			}
			log.Warn("signer plugin not available; a dev key takes its place", "plugin", n, "reason", err)
			continue
		}
		bins[n] = p
	}
	ds := &devSigning{}
	plugin := func(name, bin string, args, env []string) error {
		sum, err := sha256File(bin)
		if err != nil {
			return err
		}
		// cordon dev pins the binaries it found or built at start; a
		// production signer file pins the sha256sum of the release.
		ds.file.Plugins = append(ds.file.Plugins, pluginhost.Config{Name: name, Path: bin, SHA256: sum, Args: args, Env: env, Timeout: 30 * time.Second})
		return nil
	}
	keyFile := filepath.Join(sdir, "devkey.json")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		if err := devkeys.Generate(keyFile, []string{"eth-hot", "btc-a", "btc-b", "btc-c"}); err != nil {
			return nil, err
		}
	}
	dk, err := devkeys.Load(keyFile)
	if err != nil {
		return nil, err
	}
	if err := plugin("devkey", bins["devkey"], []string{"--keys", keyFile}, nil); err != nil {
		return nil, err
	}
	ref := func(id string) wallet.KeyRef {
		pk, _ := dk.PublicKey(ctx, id) //nolint:errcheck // the file was made with these ids
		return wallet.KeyRef{Plugin: "devkey", KeyID: id, PublicKey: hex.EncodeToString(pk)}
	}
	ds.wallets.ETH = []wallet.ETHWallet{{Name: "eth-hot", Network: devNetwork, ChainID: devnet.ChainID, Key: ref("eth-hot"),
		MaxFeePerGas: "1000000000000", MaxPriorityFeePerGas: "10000000000"}}
	if btcOn {
		keys := []wallet.KeyRef{ref("btc-a")}
		ds.kinds = []string{"devkey"}
		if k, err := devHSMKey(ctx, sdir, bins["pkcs11"], plugin); err != nil {
			log.Warn("the SoftHSM2 key of the Bitcoin wallet is a dev key", "reason", err)
			keys, ds.kinds = append(keys, ref("btc-b")), append(ds.kinds, "devkey")
		} else {
			keys, ds.kinds = append(keys, k), append(ds.kinds, "pkcs11")
		}
		if k, err := devThresholdKey(ctx, sdir, bins["threshold"], ds, plugin); err != nil {
			log.Warn("the threshold key of the Bitcoin wallet is a dev key", "reason", err)
			keys, ds.kinds = append(keys, ref("btc-c")), append(ds.kinds, "devkey")
		} else {
			keys, ds.kinds = append(keys, k), append(ds.kinds, "threshold")
		}
		ds.wallets.BTC = []wallet.BTCWallet{{Name: "btc-hot", Network: devBTCNetwork, Kind: wallet.KindP2WSH, Keys: keys, MaxFeeRate: 100, MaxFee: 1_000_000}}
	}
	cfg.Dispatch.Wallets = ds.wallets
	cfg.Dispatch.Confirmations = map[string]int{"eth/" + devNetwork: 3, "btc/" + devBTCNetwork: 2}
	cfg.Dispatch.Rebroadcast = 30 * time.Second
	ds.file.Signer = vault.Config{Approvers: cfg.Gate.Approvers, Policy: cfg.Gate.Policy, Wallets: ds.wallets, Limits: []vault.Limit{
		{Chain: "eth", Network: devNetwork, Asset: intent.Native, PerWithdrawal: "5000000000000000000000"},
		{Chain: "btc", Network: devBTCNetwork, Asset: intent.Native, PerWithdrawal: "1000000000"},
	}}
	ds.file.HealthInterval = 5 * time.Second
	return ds, nil
}

// devHSMKey is the Bitcoin wallet's key on a SoftHSM2 token of the data
// directory's own (initialized once, its PIN in a 0600 file), generated
// on the token by the pkcs11 plugin.
func devHSMKey(ctx context.Context, sdir, bin string, plugin func(string, string, []string, []string) error) (wallet.KeyRef, error) {
	if bin == "" {
		return wallet.KeyRef{}, errors.New("no pkcs11 plugin")
	}
	module, util, err := hsmtest.Find()
	if err != nil {
		return wallet.KeyRef{}, err
	}
	dir := filepath.Join(sdir, "softhsm")
	conf, pinFile := filepath.Join(dir, "softhsm2.conf"), filepath.Join(dir, "pin")
	env := []string{"SOFTHSM2_CONF=" + conf}
	const label = "cordon-dev"
	ready := filepath.Join(dir, "initialized")
	if _, err := os.Stat(ready); errors.Is(err, os.ErrNotExist) {
		_ = os.RemoveAll(dir) // a half-made token of an earlier start
		if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
			return wallet.KeyRef{}, err
		}
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", filepath.Join(dir, "tokens"))
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return wallet.KeyRef{}, err
		}
		pin, so := devRandom(8), devRandom(8)
		if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
			return wallet.KeyRef{}, err
		}
		cmd := exec.CommandContext(ctx, util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so) //nolint:gosec // softhsm2-util on our own token
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return wallet.KeyRef{}, fmt.Errorf("softhsm2-util --init-token: %w: %s", err, out)
		}
		if err := os.WriteFile(ready, nil, 0o600); err != nil {
			return wallet.KeyRef{}, err
		}
	}
	args := []string{"-module", module, "-token-label", label, "-pin-file", pinFile, "-networks", devBTCNetwork}
	run := func(sub ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append(sub, args...)...) //nolint:gosec // the pkcs11 plugin's operator commands
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("pkcs11 %s: %w: %s", sub[0], err, ee.Stderr)
			}
			return "", err
		}
		return string(out), nil
	}
	const id = "btc-hsm"
	find := func(out string) string {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == id {
				return f[1]
			}
		}
		return ""
	}
	out, err := run("list")
	if err != nil {
		return wallet.KeyRef{}, err
	}
	pub := find(out)
	if pub == "" {
		if out, err = run("keygen", "-id", id); err != nil {
			return wallet.KeyRef{}, err
		}
		if pub = find(out); pub == "" {
			return wallet.KeyRef{}, fmt.Errorf("pkcs11 keygen printed no key %s: %q", id, out)
		}
	}
	if err := plugin("pkcs11", bin, args, env); err != nil {
		return wallet.KeyRef{}, err
	}
	return wallet.KeyRef{Plugin: "pkcs11", KeyID: id, PublicKey: pub}, nil
}

// devThresholdKey is the Bitcoin wallet's threshold key: three shares
// made once by the plugin's key ceremony from the source tree's test
// pre-parameters (public: dev only), three plugin processes, one group.
func devThresholdKey(ctx context.Context, sdir, bin string, ds *devSigning, plugin func(string, string, []string, []string) error) (wallet.KeyRef, error) {
	root := sourceRoot()
	pre := filepath.Join(root, "plugins", "threshold", "party", "testdata")
	switch {
	case bin == "":
		return wallet.KeyRef{}, errors.New("no threshold plugin")
	case root == "":
		return wallet.KeyRef{}, errors.New("the key ceremony's test pre-parameters are in the source tree, which this process does not run from")
	}
	dir := filepath.Join(sdir, "threshold")
	const id = "btc-thr"
	ids := []string{"p0", "p1", "p2"}
	if _, err := os.Stat(filepath.Join(dir, "share-p2.json")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return wallet.KeyRef{}, err
		}
		cmd := exec.CommandContext(ctx, bin, "keygen", "--preparams", pre, "--out", dir, "--key-id", id, "--ids", strings.Join(ids, ",")) //nolint:gosec // the plugin's key ceremony
		if out, err := cmd.CombinedOutput(); err != nil {
			return wallet.KeyRef{}, fmt.Errorf("threshold keygen: %w: %s", err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "share-p0.json"))
	if err != nil {
		return wallet.KeyRef{}, err
	}
	var share struct {
		GroupPublicKey string `json:"group_public_key"`
	}
	if err := json.Unmarshal(b, &share); err != nil || share.GroupPublicKey == "" {
		return wallet.KeyRef{}, errors.Join(errors.New("share-p0.json: no group key"), err)
	}
	group := config.ThresholdGroup{Name: "threshold", KeyID: id, PublicKey: share.GroupPublicKey, Parties: map[string]string{}}
	for _, p := range ids {
		name := "threshold-" + p
		if err := plugin(name, bin, []string{"--share", filepath.Join(dir, "share-"+p+".json"), "--networks", devBTCNetwork}, nil); err != nil {
			return wallet.KeyRef{}, err
		}
		group.Parties[p] = name
	}
	ds.file.Threshold = append(ds.file.Threshold, group)
	return wallet.KeyRef{Plugin: "threshold", KeyID: id, PublicKey: share.GroupPublicKey}, nil
}

// open starts the signer (its plugins) on the system's Kafka: cfg is the
// filled config.
func (ds *devSigning) open(ctx context.Context, cfg config.Config, log *slog.Logger) (*signing, error) {
	ds.file.Kafka = cfg.Kafka
	return openSigner(ctx, ds.file, log)
}

// fund pays the Ethereum hot wallet up to 100,000 ETH from the devnet's
// first account, before the traffic generator owns its nonces; fundBTC
// pays the Bitcoin one 25 BTC three times (each its own output, so
// transactions do not wait for change).
func (ds *devSigning) fund(ctx context.Context, tr *devnet.Traffic, dev *devnet.Devnet, log *slog.Logger) {
	for _, w := range ds.wallets.ETH {
		a, err := w.Address()
		if err != nil {
			continue
		}
		want := new(big.Int).Mul(big.NewInt(100_000), big.NewInt(1e18))
		if bal, err := dev.Client().BalanceAt(ctx, a, nil); err == nil && bal.Cmp(new(big.Int).Div(want, big.NewInt(10))) >= 0 {
			continue
		}
		if _, err := tr.Pay(ctx, 0, a, want); err != nil {
			log.Warn("dev: funding the Ethereum hot wallet failed", "err", err)
		} else {
			log.Info("dev: funded the Ethereum hot wallet", "address", a.Hex(), "eth", 100_000)
		}
	}
}

// fundBTC pays the Bitcoin hot wallet from the dev chain's wallet (see
// fund), before that wallet's traffic starts.
func (ds *devSigning) fundBTC(ctx context.Context, bt *btcTraffic, log *slog.Logger) {
	for _, w := range ds.wallets.BTC {
		s, err := w.Script()
		if err != nil {
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; i < 3 && time.Now().Before(deadline); {
			if _, err := bt.wallet.PayTo(s.PkScript, 25_00000000); err != nil {
				log.Debug("dev: funding the Bitcoin hot wallet: waiting for spendable outputs", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				continue
			}
			i++
		}
		log.Info("dev: funded the Bitcoin hot wallet", "address", s.Address, "btc", 75, "keys", strings.Join(ds.kinds, " + "))
	}
}

func devRandom(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// addresses are the hot wallets' addresses by "chain/network".
func (ds *devSigning) addresses() map[string]string {
	out := map[string]string{}
	for _, w := range ds.wallets.ETH {
		if a, err := w.Address(); err == nil {
			out["eth/"+w.Network] = a.Hex()
		}
	}
	for _, w := range ds.wallets.BTC {
		if s, err := w.Script(); err == nil {
			out["btc/"+w.Network] = s.Address
		}
	}
	return out
}
