package kafka

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestACLScript: deploy/kafka/acls.sh is what ACLScript generates; every
// topic cordon uses has its grants; a signed topic is written only by
// the principal of the role that signs it, and no principal but the
// watcher writes the block stream.
func TestACLScript(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/kafka/acls.sh")
	require.NoError(t, err)
	require.Equal(t, ACLScript(), string(raw), "regenerate with: go run ./cmd/cordon topics --acls > deploy/kafka/acls.sh")
	writes := map[string][]string{}
	reads := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != "allow" || f[len(f)-2] != "--topic" {
			continue
		}
		who := strings.ToLower(strings.TrimPrefix(strings.Trim(f[1], `"$`), "PRINCIPAL_"))
		switch f[3] {
		case "Write":
			writes[f[len(f)-1]] = append(writes[f[len(f)-1]], who)
		case "Read":
			reads[f[len(f)-1]] = append(reads[f[len(f)-1]], who)
		}
	}
	tp := DefaultTopics()
	for _, s := range tp.Specs() {
		require.NotEmpty(t, reads[s.Name], "%s: nobody reads it", s.Name)
		if r := tp.Signer(s.Name); r != "" {
			require.Equal(t, []string{string(r)}, writes[s.Name], "%s is signed by %s: only that principal writes it", s.Name, r)
		}
	}
	for _, topic := range []string{tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends} {
		require.Equal(t, []string{PrincipalWatcher}, writes[topic], topic)
	}
	require.False(t, slices.Contains(reads[tp.Deposits], PrincipalWatcher), "the watcher reads no deposits")
	require.Equal(t, []string{PrincipalCredit}, reads[tp.Decisions], "only crediting reads decisions")
}
