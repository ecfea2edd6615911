package config

import (
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
)

// Secret is a configuration value that must not appear in logs. In YAML it
// is written as "env:NAME" (read from the environment), "file:PATH" (read
// from a file, trailing newline trimmed) or a literal.
type Secret struct {
	ref   string
	value string
}

// SecretValue returns a resolved secret holding v (for code that builds a
// Config without YAML).
func SecretValue(v string) Secret { return Secret{ref: v, value: v} }

// ParseSecret resolves a secret reference given outside a config file (a
// command-line flag): "env:NAME", "file:PATH" or a literal.
func ParseSecret(ref string) (Secret, error) {
	s := Secret{ref: ref}
	return s, s.resolve()
}

// Value returns the resolved secret.
func (s Secret) Value() string { return s.value }

// String redacts the secret.
func (s Secret) String() string {
	if s.ref == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// UnmarshalYAML keeps the reference; resolveSecrets reads it.
func (s *Secret) UnmarshalYAML(unmarshal func(any) error) error {
	var ref string
	if err := unmarshal(&ref); err != nil {
		return err
	}
	*s = Secret{ref: ref}
	return nil
}

func (s *Secret) resolve() error {
	switch {
	case strings.HasPrefix(s.ref, "env:"):
		name := strings.TrimPrefix(s.ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok {
			return fmt.Errorf("environment variable %s is not set", name)
		}
		s.value = v
	case strings.HasPrefix(s.ref, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(s.ref, "file:"))
		if err != nil {
			return err
		}
		s.value = strings.TrimRight(string(b), "\r\n")
	default:
		s.value = s.ref
	}
	return nil
}

var secretType = reflect.TypeOf(Secret{})

// ResolveSecrets resolves every Secret in cfg (a pointer to a struct with
// yaml tags), naming the key on error.
func ResolveSecrets(cfg any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: ResolveSecrets needs a pointer to a struct, not %T", cfg)
	}
	return resolveSecrets(v.Elem(), "")
}

// resolveSecrets resolves every Secret in v, naming the key on error.
func resolveSecrets(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == secretType {
			s := v.Addr().Interface().(*Secret)
			if err := s.resolve(); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return nil
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || skipped(f) {
				continue
			}
			sub := join(path, yamlName(f))
			if inline(f) {
				sub = path
			}
			if err := resolveSecrets(v.Field(i), sub); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := resolveSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Type().Elem() == secretType {
			for _, k := range v.MapKeys() {
				s := v.MapIndex(k).Interface().(Secret)
				if err := s.resolve(); err != nil {
					return fmt.Errorf("%s.%v: %w", path, k, err)
				}
				v.SetMapIndex(k, reflect.ValueOf(s))
			}
		}
	}
	return nil
}

// inline reports whether f is a struct whose YAML keys are its parent's
// (`yaml:",inline"`, embedded or named).
func inline(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return opts == "inline"
}

// skipped reports whether f is no YAML key (`yaml:"-"`): a field the
// component sets itself or that code fills in.
func skipped(f reflect.StructField) bool {
	return f.Tag.Get("yaml") == "-"
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
