package alliance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// TestAttackBulkPostStallsUrgent: one partner posts a bundle of 10,000
// valid objects of its own (within DefaultLimits). Intake checks and
// commits a whole batch under the service's one mutex, so another
// partner's urgent listing posted meanwhile waits for all of it: the 2 s
// propagation goal is the hostile partner's to break, as often as its
// rate budget allows (and a pulled page, bounded only by 32 MiB, is
// larger still).
func TestAttackBulkPostStallsUrgent(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b, cm := newMember("exchange-a"), newMember("exchange-b"), newMember("exchange-c")
	C := open(t, kafkatest.Brokers(t), cm, newRing(a, b), c)
	bulk := make([]stix.Object, 0, stix.DefaultLimits.MaxObjects)
	for i := range stix.DefaultLimits.MaxObjects {
		v := fmt.Sprintf("0x%040x", i+16)
		bulk = append(bulk, signedAs(t, b, intel.ID("b-bulk", "eth", intel.KindAddress, v), v, at, nil))
	}
	urgent := signedAs(t, a, intel.ID("exchange-a", "eth", intel.KindAddress, ethAddr), ethAddr, at, nil)
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		close(started)
		C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, bulk)
		close(done)
	}()
	<-started
	time.Sleep(20 * time.Millisecond) // B's intake holds the lock
	t0 := time.Now()
	out := C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{urgent})
	took := time.Since(t0)
	<-done
	require.NoError(t, out[0].Err)
	require.Less(t, took, 500*time.Millisecond, "A's urgent listing waited %s behind B's bulk post", took)
}
