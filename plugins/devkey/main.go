// Command devkey is a signer plugin for development: named secp256k1
// keys in a local JSON file, signing for dev and test networks only.
//
//	devkey keygen --keys FILE NAME...   create a key file (0600)
//	devkey --keys FILE                  serve (started by cordon's plugin host)
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/plugins/sdk"
)

func main() {
	args := os.Args[1:]
	keygen := len(args) > 0 && args[0] == "keygen"
	if keygen {
		args = args[1:]
	}
	fs := flag.NewFlagSet("devkey", flag.ExitOnError)
	path := fs.String("keys", "", "the key file")
	_ = fs.Parse(args)
	if *path == "" {
		fmt.Fprintln(os.Stderr, "devkey: --keys FILE is required")
		os.Exit(2)
	}
	if keygen {
		if err := keys.Generate(*path, fs.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "devkey:", err)
			os.Exit(1)
		}
		return
	}
	s, err := keys.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devkey:", err)
		os.Exit(1)
	}
	sdk.Serve(s)
}
