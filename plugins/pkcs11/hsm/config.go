package hsm

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Limits of Config.PoolSize.
const (
	DefaultPoolSize = 2
	MaxPoolSize     = 64
)

// Config is the signer's configuration, from its command-line arguments.
type Config struct {
	// Module is the path of the token's PKCS#11 library
	// (/usr/lib/softhsm/libsofthsm2.so).
	Module string
	// TokenLabel selects the token by its label; Slot (when HasSlot) by
	// its slot id instead. Exactly one is set.
	TokenLabel string
	Slot       uint
	HasSlot    bool
	// PINFile holds the user PIN (one line). It must not be readable,
	// writable or executable by others.
	PINFile string
	// PoolSize is the number of sessions kept open (1..MaxPoolSize).
	PoolSize int
	// Networks, when not empty, are the only networks Sign signs for:
	// each entry is a network ("mainnet") or a chain and network
	// ("eth/mainnet"), matched against the request's context. Others are
	// refused with sdk.ErrRefused.
	Networks []string
}

// ParseArgs reads a Config from command-line arguments:
//
//	-module PATH -token-label LABEL | -slot ID  -pin-file PATH
//	[-pool-size N] [-networks mainnet,eth/sepolia]
//
// It never reads the PIN file (New does); errors name the flag.
func ParseArgs(args []string) (Config, error) {
	return parseArgs(args, nil)
}

// parseArgs is ParseArgs with a subcommand's own flags added by extra.
func parseArgs(args []string, extra func(*flag.FlagSet)) (Config, error) {
	var (
		cfg      Config
		slot     string
		networks string
	)
	fs := flag.NewFlagSet("pkcs11", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Module, "module", "", "path of the PKCS#11 library")
	fs.StringVar(&cfg.TokenLabel, "token-label", "", "label of the token")
	fs.StringVar(&slot, "slot", "", "slot id of the token (instead of -token-label)")
	fs.StringVar(&cfg.PINFile, "pin-file", "", "file holding the user PIN")
	fs.IntVar(&cfg.PoolSize, "pool-size", DefaultPoolSize, "sessions kept open")
	fs.StringVar(&networks, "networks", "", "comma-separated networks signed for (empty: any)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("pkcs11 arguments: %w", err)
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if cfg.Module == "" {
		errs = append(errs, errors.New("-module: required"))
	}
	if slot != "" {
		var id uint
		if _, err := fmt.Sscan(slot, &id); err != nil || fmt.Sprint(id) != slot {
			errs = append(errs, fmt.Errorf("-slot: %q is not a slot id", slot))
		}
		cfg.Slot, cfg.HasSlot = id, true
	}
	switch {
	case cfg.TokenLabel == "" && !cfg.HasSlot:
		errs = append(errs, errors.New("-token-label or -slot: one is required"))
	case cfg.TokenLabel != "" && cfg.HasSlot:
		errs = append(errs, errors.New("-token-label and -slot: give only one"))
	case len(cfg.TokenLabel) > 32:
		errs = append(errs, errors.New("-token-label: longer than a token label's 32 bytes"))
	}
	if cfg.PINFile == "" {
		errs = append(errs, errors.New("-pin-file: required (the PIN is never taken from arguments or the environment)"))
	}
	if cfg.PoolSize < 1 || cfg.PoolSize > MaxPoolSize {
		errs = append(errs, fmt.Errorf("-pool-size: %d is not within 1..%d", cfg.PoolSize, MaxPoolSize))
	}
	if networks != "" {
		for _, n := range strings.Split(networks, ",") {
			n = strings.TrimSpace(n)
			if n == "" || strings.Count(n, "/") > 1 || strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") {
				errs = append(errs, fmt.Errorf("-networks: %q is not a network or chain/network", n))
				continue
			}
			cfg.Networks = append(cfg.Networks, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("pkcs11 arguments: %w", err)
	}
	return cfg, nil
}

// allows reports whether the allow-list lets the signer sign for chain
// and network.
func (c Config) allows(chain, network string) bool {
	if len(c.Networks) == 0 {
		return true
	}
	for _, n := range c.Networks {
		if n == network || n == chain+"/"+network {
			return true
		}
	}
	return false
}

// readPIN reads the PIN from path: a regular file with no permission for
// others, holding the PIN on one line.
func readPIN(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("-pin-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("-pin-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("-pin-file: %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 {
		return "", fmt.Errorf("-pin-file: %s has mode %04o: others may access it; chmod o-rwx it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1025))
	if err != nil {
		return "", fmt.Errorf("-pin-file: %w", err)
	}
	if len(b) > 1024 {
		return "", fmt.Errorf("-pin-file: %s is longer than a PIN", path)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pin == "" || strings.ContainsAny(pin, "\r\n") {
		return "", fmt.Errorf("-pin-file: %s must hold the PIN on one line", path)
	}
	return pin, nil
}
