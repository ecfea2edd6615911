// Command pkcs11 is a signer plugin on a PKCS#11 token (an HSM; tested
// on SoftHSM2): secp256k1 keys generated on the token, non-extractable,
// signing with CKM_ECDSA over the digest (hsm's README).
//
//	pkcs11 keygen -id ID <flags>   create a key on the token, print it
//	pkcs11 list <flags>            print the token's usable keys
//	pkcs11 <flags>                 serve (started by cordon's plugin host)
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cordonhq/cordon/plugins/pkcs11/hsm"
	"github.com/cordonhq/cordon/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	args := os.Args[1:]
	if len(args) > 0 && hsm.IsCommand(args[0]) {
		if err := hsm.Command(context.Background(), args, os.Stdout, log); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	cfg, err := hsm.ParseArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkcs11:", err)
		os.Exit(2)
	}
	s, err := hsm.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkcs11:", err)
		os.Exit(1)
	}
	defer s.Close()
	sdk.Serve(s)
}
