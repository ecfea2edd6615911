package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// TestDevAlliance: cordon dev --partners 2 starts exchange-b and
// exchange-c beside the main instance; exchange-b's urgent listing of
// the simulated theft flags it at the main instance, whose crediting
// holds the deposits it pays and denies the withdrawal to it, and tells
// exchange-b of both (sightings); cordon share commands work with each
// exchange's --data-dir, and a listing exchange-c publishes from the
// command line flags at the main instance too.
func TestDevAlliance(t *testing.T) {
	if testing.Short() {
		t.Skip("the dev system")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	done := make(chan error, 1)
	go func() {
		done <- cmdDev(ctx, []string{"--data-dir", dir, "--quiet", "--no-btc", "--no-clickhouse", "--block-interval", "300ms",
			"--reorg-every", "0", "--log-level", "warn", "--partners", "2", "--withdrawal-every", "500ms"})
	}()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()
	path := filepath.Join(dir, "endpoints.json")
	var ep endpoints
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		if ep, err = readEndpoints(dir); err == nil && len(ep.Partners) == 2 && ep.Partners[1].API != "" {
			break
		}
		require.True(t, time.Now().Before(deadline), "%s names no partners", path)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, "exchange-a", ep.Exchange)
	require.True(t, strings.HasPrefix(ep.TAXII, "https://127.0.0.1:"))
	require.Equal(t, "exchange-b", ep.Partners[0].Name)
	require.Equal(t, "exchange-c", ep.Partners[1].Name)
	pep, err := readEndpoints(ep.Partners[1].DataDir)
	require.NoError(t, err)
	require.Equal(t, "exchange-c", pep.Exchange)

	screen := func(addr string) string {
		body := `{"addresses":[{"chain":"eth","network":"devnet","address":"` + addr + `"}]}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.API.URL+"/v1/screen", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ep.API.OperatorToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	flagged := func(addr, source string, within time.Duration) {
		deadline := time.Now().Add(within)
		for {
			resp := screen(addr)
			if strings.Contains(resp, `"verdict":"flagged"`) && strings.Contains(resp, `"source":"`+source+`"`) {
				return
			}
			require.True(t, time.Now().Before(deadline), "%s not flagged by %s: %s", addr, source, resp)
			time.Sleep(100 * time.Millisecond)
		}
	}
	theft := devAccount(30)
	flagged(theft, "exchange-b", 60*time.Second)

	// The deposits the theft pays are held, exchange-b's listing the
	// reason.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		var buf bytes.Buffer
		require.NoError(t, cmdDepositsList(ctx, []string{"--data-dir", dir, "--status", "held", "--format", "json"}, &buf))
		if strings.Contains(buf.String(), "exchange-b") {
			break
		}
		require.True(t, time.Now().Before(deadline), "no deposit held by exchange-b's listing: %s", buf.String())
		time.Sleep(time.Second)
	}

	// The main instance told exchange-b: a signed sighting in its inbox.
	bep, err := readEndpoints(ep.Partners[0].DataDir)
	require.NoError(t, err)
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, m := httpGet(t, "http://"+bep.HTTP+"/metrics")
		if strings.Contains(m, `cordon_sharing_sightings_received_total{partner="exchange-a"}`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "exchange-b received no sighting")
		time.Sleep(200 * time.Millisecond)
	}

	// And of the withdrawal to the theft, which the gate denied.
	deadline = time.Now().Add(60 * time.Second)
	for {
		_, m := httpGet(t, "http://"+ep.HTTP+"/metrics")
		if strings.Contains(m, `cordon_sharing_sightings_sent_total{of="withdrawal",partner="exchange-b",result="sent"}`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "no sighting of a withdrawal sent to exchange-b")
		time.Sleep(200 * time.Millisecond)
	}

	// exchange-c publishes from the command line; the main instance
	// flags it.
	listed := "0x00000000000000000000000000000000000c0ffe"
	require.NoError(t, cmdShare(ctx, []string{"publish", "--data-dir", ep.Partners[1].DataDir, "--urgent", "--chain", "eth", "--network", "devnet",
		"--category", "scam", "--tlp", "green", listed}))
	flagged(listed, "exchange-c", 10*time.Second)
	require.NoError(t, cmdShare(ctx, []string{"revoke", "--data-dir", ep.Partners[1].DataDir, "--chain", "eth", "--network", "devnet", listed}))
	deadline = time.Now().Add(10 * time.Second)
	for strings.Contains(screen(listed), `"verdict":"flagged"`) {
		require.True(t, time.Now().Before(deadline), "the revocation did not clear %s", listed)
		time.Sleep(100 * time.Millisecond)
	}

	// cordon share partners: the main instance's figures per partner.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	client := gateFlags(fs)
	require.NoError(t, fs.Parse([]string{"--data-dir", dir}))
	c, err := client()
	require.NoError(t, err)
	var pa struct {
		Self     string `json:"self"`
		Partners []struct {
			Partner  string `json:"partner"`
			Received int    `json:"received"`
		} `json:"partners"`
	}
	require.NoError(t, c.call(ctx, "GET", "/v1/share/partners", nil, &pa))
	require.Equal(t, "exchange-a", pa.Self)
	require.Len(t, pa.Partners, 2)
	got := map[string]int{}
	for _, p := range pa.Partners {
		got[p.Partner] = p.Received
	}
	require.GreaterOrEqual(t, got["exchange-b"], 2, "the theft and the AMBER listing: %v", got)
	require.GreaterOrEqual(t, got["exchange-c"], 2, "the listing and its revocation: %v", got)
	require.NoError(t, cmdShare(ctx, []string{"partners", "--data-dir", dir}))
}

// devAccount is the address of the dev devnet's i-th account.
func devAccount(i int) string {
	return strings.ToLower(crypto.PubkeyToAddress(devnet.Keys("cordon-dev", 32)[i].PublicKey).Hex())
}
