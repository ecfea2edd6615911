package btc_test

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"
)

var (
	btcdDirOnce sync.Once
	btcdDir     string
	btcdDirErr  error
)

// btcdTestdata returns the path of a file in btcd's module (its testdata
// holds real mainnet blocks), from the module cache go.mod pins.
func btcdTestdata(tb testing.TB, rel string) string {
	tb.Helper()
	btcdDirOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/btcsuite/btcd").Output()
		if err != nil {
			btcdDirErr = err
			return
		}
		btcdDir = strings.TrimSpace(string(out))
		if btcdDir == "" {
			btcdDirErr = errors.New("btcd module not downloaded (go mod download)")
		}
	})
	require.NoError(tb, btcdDirErr, "locating btcd's module")
	return filepath.Join(btcdDir, rel)
}

// mainnetBlocks reads btcd's blocks1-256 file: mainnet blocks 1 to 255,
// each framed as network, length, bytes.
func mainnetBlocks(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open(btcdTestdata(tb, "database/testdata/blocks1-256.bz2"))
	require.NoError(tb, err)
	defer f.Close()
	return readFramed(tb, bzip2.NewReader(f))
}

func readFramed(tb testing.TB, r io.Reader) [][]byte {
	var out [][]byte
	for {
		var hdr [8]byte
		_, err := io.ReadFull(r, hdr[:])
		if err == io.EOF {
			return out
		}
		require.NoError(tb, err)
		require.Equal(tb, uint32(wire.MainNet), binary.LittleEndian.Uint32(hdr[:4]))
		b := make([]byte, binary.LittleEndian.Uint32(hdr[4:]))
		_, err = io.ReadFull(r, b)
		require.NoError(tb, err)
		out = append(out, b)
	}
}

// bigBlock is a recent full mainnet block from btcd's wire testdata.
type bigBlock struct {
	name string
	raw  []byte
}

func bigBlocks(tb testing.TB) []bigBlock {
	tb.Helper()
	var out []bigBlock
	for _, name := range []string{
		"block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk",
		"block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk",
	} {
		raw, err := os.ReadFile(btcdTestdata(tb, filepath.Join("wire/testdata", name)))
		require.NoError(tb, err)
		out = append(out, bigBlock{name: strings.TrimSuffix(strings.TrimPrefix(name, "block-"), ".blk"), raw: raw})
	}
	f, err := os.Open(btcdTestdata(tb, "blockchain/testdata/277647.dat.bz2"))
	require.NoError(tb, err)
	defer f.Close()
	raw := readFramed(tb, bzip2.NewReader(f))
	require.Len(tb, raw, 1)
	out = append(out, bigBlock{name: "277647", raw: raw[0]})
	return out
}

// bip34Height reads the height a version ≥ 2 block's coinbase commits to.
func bip34Height(tb testing.TB, raw []byte) uint64 {
	var blk wire.MsgBlock
	require.NoError(tb, blk.Deserialize(bytes.NewReader(raw)))
	sig := blk.Transactions[0].TxIn[0].SignatureScript
	n := int(sig[0])
	require.True(tb, n >= 1 && n <= 8, "coinbase height push of %d bytes", n)
	var h uint64
	for i := n; i >= 1; i-- {
		h = h<<8 | uint64(sig[i])
	}
	return h
}
