package pluginhost_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/cordonhq/cordon/plugins/pkcs11/hsm"
	"github.com/cordonhq/cordon/plugins/pkcs11/hsmtest"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/pluginhost"
)

// BenchmarkPKCS11 measures signatures per second on one SoftHSM2 token
// in one run: CKM_ECDSA called directly (one session, one caller), the
// hsm library in process, and the pkcs11 plugin through the host (a
// real process over gRPC and mTLS), with one caller and with as many
// callers as sessions. The ratios are in BENCHMARKS.md.
func BenchmarkPKCS11(b *testing.B) {
	tok := hsmtest.Start(b)
	for _, kv := range tok.Env {
		k, v, _ := cut(kv)
		b.Setenv(k, v)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "pkcs11")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/pkcs11").CombinedOutput(); err != nil {
		b.Fatalf("go build pkcs11: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, append([]string{"keygen", "-id", "hot"}, tok.Args()...)...).CombinedOutput(); err != nil { //nolint:gosec // test binary
		b.Fatalf("keygen: %v\n%s", err, out)
	}
	digest := sha256.Sum256([]byte("cordon"))
	b.Run("direct-1session", func(b *testing.B) {
		p := pkcs11.New(tok.Module)
		if err := p.Initialize(); err != nil {
			b.Fatal(err)
		}
		defer p.Destroy()
		defer func() { _ = p.Finalize() }()
		slots, err := p.GetSlotList(true)
		if err != nil {
			b.Fatal(err)
		}
		var sess pkcs11.SessionHandle
		for _, s := range slots {
			ti, err := p.GetTokenInfo(s)
			if err == nil && ti.Label == tok.Label {
				sess, err = p.OpenSession(s, pkcs11.CKF_SERIAL_SESSION)
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := p.Login(sess, pkcs11.CKU_USER, tok.PIN); err != nil {
			b.Fatal(err)
		}
		if err := p.FindObjectsInit(sess, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "hot")}); err != nil {
			b.Fatal(err)
		}
		objs, _, err := p.FindObjects(sess, 1)
		_ = p.FindObjectsFinal(sess)
		if err != nil || len(objs) != 1 {
			b.Fatalf("finding the key: %v", err)
		}
		b.ResetTimer()
		for range b.N {
			if err := p.SignInit(sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, objs[0]); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Sign(sess, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
	})
	req := sdk.SignRequest{KeyID: "hot", Digest: digest, Context: sdk.SignContext{Chain: "eth", Network: "mainnet"}}
	run := func(b *testing.B, s sdk.Signer, callers int) {
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		per := (b.N + callers - 1) / callers
		for range callers {
			wg.Go(func() {
				for range per {
					if _, err := s.Sign(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(per*callers)/time.Since(start).Seconds(), "sig/s")
	}
	for _, pool := range []int{1, 2} {
		args := append(tok.Args(), "-pool-size", itoa(pool))
		b.Run("library-pool"+itoa(pool), func(b *testing.B) {
			cfg, err := hsm.ParseArgs(args)
			if err != nil {
				b.Fatal(err)
			}
			s, err := hsm.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run(b, s, pool)
		})
		b.Run("plugin-pool"+itoa(pool), func(b *testing.B) {
			raw, err := os.ReadFile(bin)
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.Sum256(raw)
			p, err := pluginhost.Open(pluginhost.Config{Name: "hsm", Path: bin, SHA256: hex.EncodeToString(h[:]),
				Args: args, Env: tok.Env}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			run(b, p, pool)
		})
	}
}

func cut(kv string) (string, string, bool) {
	for i := range len(kv) {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func itoa(n int) string { return strconv.Itoa(n) }
