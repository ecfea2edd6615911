package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
)

func header(h uint64, hash, parent string) chain.Header {
	return chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: hash, ParentHash: parent, Time: int64(h)}
}

func added(seq uint64, h chain.Header) chain.Update {
	return chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockAdded, Seq: seq, Header: h},
		Block: &chain.Block{Header: h, Transfers: []chain.Transfer{{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative,
			TxHash: "0xt" + h.Hash, From: "0xa", To: "0xb", Amount: chain.AmountFromUint64(h.Height + 1), BlockHash: h.Hash, BlockHeight: h.Height}}}}
}

func removed(seq uint64, h chain.Header) chain.Update {
	return chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockRemoved, Seq: seq, Header: h}}
}

func newProducer(t testing.TB, cfg Config) *Producer {
	t.Helper()
	cfg.CreateTopics = true
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.EnsureTopics(ctx))
	return p
}

// TestCheckpointAfterReorgAndDuplicates writes a stream with a reorg and a
// duplicated (retried) batch, interleaved with another chain's stream, and
// reads the checkpoint back.
func TestCheckpointAfterReorgAndDuplicates(t *testing.T) {
	p := newProducer(t, Config{Brokers: kafkatest.Brokers(t), Partitions: 1})
	ctx := context.Background()
	g := header(0, "g", "")
	a1, a2, a3 := header(1, "a1", "g"), header(2, "a2", "a1"), header(3, "a3", "a2")
	b2, b3, b4 := header(2, "b2", "a1"), header(3, "b3", "b2"), header(4, "b4", "b3")
	require.NoError(t, p.Publish(ctx, []chain.Update{added(1, g), added(2, a1), added(3, a2)}))
	other := added(1, header(7, "x7", "x6"))
	other.Event.Network, other.Block.Network = "other", "other"
	require.NoError(t, p.Publish(ctx, []chain.Update{other}))
	require.NoError(t, p.Publish(ctx, []chain.Update{added(4, a3)}))
	require.NoError(t, p.Publish(ctx, []chain.Update{added(4, a3)})) // a retried write
	require.NoError(t, p.Publish(ctx, []chain.Update{removed(5, a3), removed(6, a2), added(7, b2), added(8, b3), added(9, b4)}))

	cp, err := p.Checkpoint(ctx, chain.ETH, "t", 3)
	require.NoError(t, err)
	require.Equal(t, uint64(10), cp.NextSeq)
	require.Equal(t, []chain.Header{b2, b3, b4}, cp.Tail)

	cp, err = p.Checkpoint(ctx, chain.ETH, "t", 100)
	require.NoError(t, err)
	require.Equal(t, []chain.Header{g, a1, b2, b3, b4}, cp.Tail)

	cp, err = p.Checkpoint(ctx, chain.ETH, "other", 10)
	require.NoError(t, err)
	require.Equal(t, uint64(2), cp.NextSeq)

	cp, err = p.Checkpoint(ctx, chain.ETH, "empty", 10)
	require.NoError(t, err)
	require.Equal(t, chain.Checkpoint{NextSeq: 1}, cp)

	// Transfers are readable, keyed deterministically.
	n := 0
	require.NoError(t, p.ReadParts(ctx, p.Topics().Transfers, func(part Part) error {
		trs, err := Items[chain.Transfer](part)
		require.NoError(t, err)
		require.Equal(t, 1, part.Parts)
		for _, tr := range trs {
			require.Equal(t, part.BlockHash, tr.BlockHash)
		}
		n += len(trs)
		return nil
	}))
	require.Equal(t, 9, n, "8 blocks' transfers plus one retried")
}

// TestStreamStaysInOnePartition checks that every event of a stream lands
// in the partition BlocksPartition names, whatever its sequence number.
func TestStreamStaysInOnePartition(t *testing.T) {
	p := newProducer(t, Config{Brokers: kafkatest.Brokers(t), Partitions: 8})
	ctx := context.Background()
	var batch []chain.Update
	prev := ""
	for i := uint64(0); i < 50; i++ {
		h := header(i, fmt.Sprintf("h%d", i), prev)
		prev = h.Hash
		batch = append(batch, added(i+1, h))
	}
	require.NoError(t, p.Publish(ctx, batch))
	part, ok, err := p.BlocksPartition(ctx, chain.ETH, "t")
	require.NoError(t, err)
	require.True(t, ok)
	seen := map[int]int{}
	require.NoError(t, p.ReadAll(ctx, p.Topics().Blocks, func(r Record) error {
		seen[r.Partition]++
		return nil
	}))
	require.Equal(t, map[int]int{part: 50}, seen)
}

func selfSigned(t testing.TB, dir string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	return certFile, keyFile, cert
}

// TestTLSAndSASL publishes to a broker that requires TLS and SCRAM, as a
// production cluster does, and checks a wrong password is refused.
func TestTLSAndSASL(t *testing.T) {
	certFile, _, cert := selfSigned(t, t.TempDir())
	brokers := kafkatest.Brokers(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "cordon", "hunter2"))
	cfg := Config{Brokers: brokers, TLS: TLSConfig{Enabled: true, CAFile: certFile},
		SASL: SASLConfig{Mechanism: "scram-sha-512", Username: "cordon", Password: config.SecretValue("hunter2")}}
	p := newProducer(t, cfg)
	ctx := context.Background()
	require.NoError(t, p.Publish(ctx, []chain.Update{added(1, header(0, "g", ""))}))
	cp, err := p.Checkpoint(ctx, chain.ETH, "t", 4)
	require.NoError(t, err)
	require.Equal(t, uint64(2), cp.NextSeq)

	cfg.SASL.Password = config.SecretValue("wrong")
	cfg.MaxAttempts = 1
	bad, err := New(cfg, nil, nil)
	require.NoError(t, err)
	defer bad.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.Error(t, bad.Publish(wctx, []chain.Update{added(2, header(1, "a", "g"))}))
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{}, nil, nil)
	require.ErrorContains(t, err, "no brokers")
	_, err = New(Config{Brokers: []string{"x:1"}, Compression: "brotli"}, nil, nil)
	require.ErrorContains(t, err, `compression "brotli"`)
	_, err = New(Config{Brokers: []string{"x:1"}, SASL: SASLConfig{Mechanism: "gssapi"}}, nil, nil)
	require.ErrorContains(t, err, "kafka.sasl")
	_, err = New(Config{Brokers: []string{"x:1"}, TLS: TLSConfig{Enabled: true, CAFile: "/nonexistent"}}, nil, nil)
	require.ErrorContains(t, err, "ca_file")
}
