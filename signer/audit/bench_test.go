package audit

import (
	"testing"

	"github.com/cordonhq/cordon/internal/clock"
)

// BenchmarkAppend: a record handed out and made into its Kafka record,
// with a checkpoint every 1000.
func BenchmarkAppend(b *testing.B) {
	c, err := New(Config{}, testKey("leader"), clock.NewManual(t0))
	if err != nil {
		b.Fatal(err)
	}
	body := eventBody(7)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := c.Append(KindRequest, "wd_000007", "token-exchange", body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Message("cordon.audit"); err != nil {
			b.Fatal(err)
		}
		if c.Due() {
			if _, err := c.Checkpoint(); err != nil {
				b.Fatal(err)
			}
		}
		c.Commit()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify: a log of 10,000 records (checkpoints every 1000)
// verified whole.
func BenchmarkVerify(b *testing.B) {
	es := buildLog(b, 10_000, 1000, testKey("leader"))
	keys := trusted(b, testKey("leader"))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(es, keys); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(es))/b.Elapsed().Seconds(), "records/s")
}
