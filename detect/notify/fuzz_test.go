package notify_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/notify"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

// FuzzEncode: whatever an alert holds (its summary and addresses come
// from the chain and from operators' rules), its delivery is valid JSON
// that decodes back to the alert, its signature verifies and breaks with
// any changed byte, and its chat text stays on its few lines with no
// markup.
func FuzzEncode(f *testing.F) {
	f.Add("detect/drain/1", "drain", "critical", "wallet 0xabc paid 0xdef", "0xabc", "0xt", uint64(12), false, false)
	f.Add("x", "", "", "<!channel> & \n\x00 line\u2028 \u202e0xabc\u200b", "\xff\xfe", "", uint64(0), true, true)
	f.Add("forged\r\nX-Evil: 1", "", "critical", "m", "a", "\r\n", uint64(3), false, false)
	f.Add("detect/custom:x/2", "custom:x", "warning", "{amount_text} of {asset}\r\n[HIGH] forged", "bc1q", "aa", uint64(1<<62), true, false)
	f.Fuzz(func(t *testing.T, id, rule, severity, message, addr, tx string, height uint64, retracted, chat bool) {
		a := chain.Alert{V: 1, ID: id, Type: rule, Rule: rule, Severity: severity, Chain: chain.ETH, Network: "mainnet",
			Time: time.Unix(1_800_000_000, 0).UTC(), Message: message, Details: map[string]string{"k": message},
			Retracted: retracted, Height: height, BlockHash: tx, TxHash: tx, Addresses: []string{addr}}
		w := notify.Webhook{Name: "soc", Secret: iconfig.SecretValue("0123456789abcdef"), Format: notify.FormatCordon}
		if chat {
			w.Format = notify.FormatChat
		}
		now := time.Unix(1_800_000_100, 0)
		d, err := notify.Encode(w, a, now)
		require.NoError(t, err)
		require.True(t, json.Valid(d.Body))
		h := http.Header{}
		for k, v := range d.Headers {
			h.Set(k, v) // as a receiver gets them: a bad header value would fail here
		}
		require.False(t, strings.ContainsFunc(d.Headers[notify.HeaderDelivery], func(r rune) bool { return r <= ' ' || r > '~' }))
		key := []byte("0123456789abcdef")
		require.NoError(t, notify.Verify(key, h, d.Body, now, time.Minute))
		require.ErrorIs(t, notify.Verify([]byte("0123456789abcdeF"), h, d.Body, now, time.Minute), notify.ErrBadSignature)
		for _, i := range []int{0, len(d.Body) / 2, len(d.Body) - 1} {
			b := append([]byte(nil), d.Body...)
			b[i] ^= 0x01
			require.ErrorIs(t, notify.Verify(key, h, b, now, time.Minute), notify.ErrBadSignature)
		}
		// The delivery and event headers are signed too.
		for _, hd := range []string{notify.HeaderDelivery, notify.HeaderEvent} {
			h2 := h.Clone()
			h2.Set(hd, h.Get(hd)+"x")
			require.ErrorIs(t, notify.Verify(key, h2, d.Body, now, time.Minute), notify.ErrBadSignature, hd)
		}
		require.ErrorIs(t, notify.Verify(key, h, d.Body, now.Add(2*time.Minute), time.Minute), notify.ErrStale)

		if !chat {
			// What JSON can hold of the alert (invalid UTF-8 becomes U+FFFD).
			var want chain.Alert
			b, err := json.Marshal(a)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &want))
			var env notify.Envelope
			require.NoError(t, json.Unmarshal(d.Body, &env))
			require.Equal(t, want, env.Alert)
			require.Equal(t, retracted, env.Event == notify.EventRetraction)
			return
		}
		var m struct{ Text string }
		require.NoError(t, json.Unmarshal(d.Body, &m))
		lines := strings.Split(m.Text, "\n")
		require.LessOrEqual(t, len(lines), 3, m.Text)
		require.NotContains(t, m.Text, "<")
		require.NotContains(t, m.Text, ">")
		for _, r := range m.Text {
			require.False(t, r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)), "control or format character %q in %q", r, m.Text)
		}
		require.True(t, strings.HasPrefix(lines[len(lines)-1], "id "), m.Text)
	})
}
