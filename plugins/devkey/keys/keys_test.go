package keys_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := keys.Generate(path, []string{"hot", "change"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v: want 0600", fi.Mode().Perm(), err)
	}
	if err := keys.Generate(path, []string{"other"}); err == nil {
		t.Fatal("Generate overwrote an existing key file")
	}
	s, err := keys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sdktest.Run(t, s, sdktest.Options{Chain: "btc", Network: "regtest"})
	for _, n := range []string{"mainnet", "", "Mainnet"} {
		_, err := s.Sign(context.Background(), sdk.SignRequest{KeyID: "hot", Context: sdk.SignContext{Chain: "eth", Network: n}})
		if !errors.Is(err, sdk.ErrRefused) {
			t.Errorf("network %q: %v, want ErrRefused", n, err)
		}
	}
}
