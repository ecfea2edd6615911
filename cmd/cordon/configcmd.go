package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cordonhq/cordon/config"
)

// cmdConfig is `cordon config check`: load and validate a configuration
// file as `cordon run` would, and list the settings that weaken security.
func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("config: want `cordon config check --config FILE [--strict]`")
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	path := fs.String("config", os.Getenv("CORDON_CONFIG"), "configuration file; env CORDON_CONFIG")
	strict := fs.Bool("strict", false, "fail when there are warnings")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("config check: --config FILE is required")
	}
	cfg, err := config.Load(*path, os.Environ())
	if err != nil {
		return err
	}
	warnings := cfg.Warnings()
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if len(warnings) > 0 && *strict {
		return fmt.Errorf("config check: %d warnings", len(warnings))
	}
	fmt.Fprintf(stdout, "%s: valid, %d warnings\n", *path, len(warnings))
	return nil
}
