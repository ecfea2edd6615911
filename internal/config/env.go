package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "CORDON_"

// ApplyEnv overrides keys of cfg (a pointer to a struct with yaml tags)
// from environment variables named after their path: kafka.brokers is CORDON_KAFKA_BROKERS (comma separated for lists),
// chains.eth[0].endpoints[1].url is CORDON_CHAINS_ETH_0_ENDPOINTS_1_URL.
// A variable with the prefix that names no key is an error, so a typo does
// not go unnoticed.
func ApplyEnv(cfg any, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	used := map[string]bool{}
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: ApplyEnv needs a pointer to a struct, not %T", cfg)
	}
	if err := walkEnv(v.Elem(), strings.TrimSuffix(EnvPrefix, "_"), "", vars, used); err != nil {
		return err
	}
	for k := range vars {
		if !used[k] && !ignoredEnv[k] && !strings.HasPrefix(k, "CORDON_TEST_") {
			return fmt.Errorf("environment variable %s names no configuration key", k)
		}
	}
	return nil
}

// ignoredEnv are CORDON_ variables that are not configuration keys (nor
// are CORDON_TEST_*, used by the test suite).
var ignoredEnv = map[string]bool{"CORDON_CONFIG": true, "CORDON_DATA_DIR": true}

var durationType = reflect.TypeOf(time.Duration(0))

func walkEnv(v reflect.Value, name, path string, vars map[string]string, used map[string]bool) error {
	if v.Kind() == reflect.Struct && v.Type() != secretType {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || skipped(f) {
				continue
			}
			if inline(f) { // its keys are the parent's
				if err := walkEnv(v.Field(i), name, path, vars, used); err != nil {
					return err
				}
				continue
			}
			key := yamlName(f)
			if err := walkEnv(v.Field(i), name+"_"+strings.ToUpper(key), join(path, key), vars, used); err != nil {
				return err
			}
		}
		return nil
	}
	if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Bool {
		if s, ok := vars[name]; ok {
			used[name] = true
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%s (from %s): %q is not a boolean", path, name, s)
			}
			v.Set(reflect.ValueOf(&b))
		}
		return nil
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct {
		// Overrides reach existing entries and may append the next one.
		for i := 0; ; i++ {
			prefix := fmt.Sprintf("%s_%d", name, i)
			if i >= v.Len() {
				if !hasPrefix(vars, prefix+"_") {
					return nil
				}
				v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
			}
			if err := walkEnv(v.Index(i), prefix, fmt.Sprintf("%s[%d]", path, i), vars, used); err != nil {
				return err
			}
		}
	}
	s, ok := vars[name]
	if !ok {
		return nil
	}
	used[name] = true
	if err := setScalar(v, s); err != nil {
		return fmt.Errorf("%s (from %s): %w", path, name, err)
	}
	return nil
}

func hasPrefix(vars map[string]string, p string) bool {
	for k := range vars {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == secretType {
		v.Set(reflect.ValueOf(Secret{ref: s}))
		return nil
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 500ms or 2s)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		v.SetUint(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
