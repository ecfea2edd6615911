// Package config holds the primitives cordon's configuration is built
// from: secret references (Secret, ParseSecret: "env:NAME", "file:PATH" or
// a literal, redacted in logs), CORDON_* environment overrides named after
// a key's YAML path (ApplyEnv), resolving every secret of a configuration
// (ResolveSecrets), and collecting every validation problem with its key
// (Problems).
//
// The configuration file itself — the root Config composed of each
// component's own Config type, its defaults, loading and validation — is
// the top-level package config; this one imports nothing outside
// internal/ so that every component can use it.
package config
