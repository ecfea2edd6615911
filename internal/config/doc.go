// Package config loads cordon's one YAML configuration file, applies
// CORDON_* environment overrides, resolves secret references and validates
// every key, naming the bad key in each error. cordon.example.yaml at the
// repository root documents every key.
package config
