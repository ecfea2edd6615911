// Package config is cordon's one YAML configuration file: the root Config
// composes each component's own Config type (kafka.Config under kafka,
// credit.Config under credit, ...) with the keys cordon.example.yaml
// documents, fills the defaults, applies CORDON_* environment overrides,
// resolves secret references and validates every key, naming the bad key
// in each error. Nothing is copied between structs: a component receives
// its section as it was read.
//
// The primitives it is built from (Secret, environment overrides,
// collecting problems) are internal/config, which components import too.
package config
