package hsm

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ethereum/go-ethereum/crypto"
)

// IsCommand reports whether name is one of the operator subcommands
// Command runs ("keygen", "list"); the plugin's main serves otherwise.
func IsCommand(name string) bool { return name == "keygen" || name == "list" }

// Command runs an operator subcommand, args[0] naming it, the rest the
// signer's flags (ParseArgs):
//
//	keygen -id ID <flags>   create a key on the token, print it
//	list <flags>            print the token's usable keys
//
// Each key is printed as one line: id, compressed public key (hex) and
// its Ethereum address.
func Command(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 || !IsCommand(args[0]) {
		return errors.New("pkcs11: a subcommand is one of keygen, list")
	}
	var id string
	extra := func(fs *flag.FlagSet) {}
	if args[0] == "keygen" {
		extra = func(fs *flag.FlagSet) { fs.StringVar(&id, "id", "", "id (label) of the key to generate") }
	}
	cfg, err := parseArgs(args[1:], extra)
	if err != nil {
		return fmt.Errorf("pkcs11 %s: %w", args[0], err)
	}
	if args[0] == "keygen" && id == "" {
		return errors.New("pkcs11 keygen: -id: required")
	}
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	if args[0] == "keygen" {
		pub, err := s.GenerateKey(ctx, id)
		if err != nil {
			return err
		}
		return printKey(stdout, id, pub)
	}
	d, err := s.Describe(ctx)
	if err != nil {
		return err
	}
	for _, k := range d.Keys {
		if err := printKey(stdout, k.ID, k.PublicKey); err != nil {
			return err
		}
	}
	return nil
}

func printKey(w io.Writer, id string, pub []byte) error {
	pk, err := crypto.DecompressPubkey(pub)
	if err != nil {
		return fmt.Errorf("pkcs11: key %q: %w", id, err)
	}
	_, err = fmt.Fprintf(w, "%s\t%s\t%s\n", id, hex.EncodeToString(pub), crypto.PubkeyToAddress(*pk).Hex())
	return err
}
