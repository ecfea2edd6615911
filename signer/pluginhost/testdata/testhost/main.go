// Command testhost is a host for pluginhost's tests: it opens the plugin
// named by its arguments, prints the plugin's pid and waits to be killed.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/cordonhq/cordon/signer/pluginhost"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: testhost BINARY SHA256 [ARG...]")
		os.Exit(2)
	}
	p, err := pluginhost.Open(pluginhost.Config{Name: "test", Path: os.Args[1], SHA256: os.Args[2], Args: os.Args[3:]},
		slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(p.Pid())
	select {}
}
