package taxii

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/clock"
)

func rec(id string, v time.Time) Record {
	return Record{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v,
		Raw: []byte(fmt.Sprintf(`{"id":%q,"amount":"123456789012345678901234567890"}`, id))}
}

// Objects added at the same instant get strictly increasing date-added
// times, and paging with added_after from each page's last object sees
// every object once, whatever the page size.
func TestStorePagingNeverSkipsOrRepeats(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 123456789, time.UTC)
	s := NewStore(clock.NewManual(at), "c")
	v := at.Add(-time.Hour)
	added, err := s.Add("c", []Record{rec("indicator--1", v), rec("indicator--2", v), rec("indicator--3", v)})
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, true}, added)
	added, err = s.Add("c", []Record{rec("indicator--4", v), rec("indicator--1", v), rec("indicator--5", v), rec("indicator--5", v)})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true, false}, added, "duplicates are skipped, not errors")

	all, err := s.Query("c", Filter{}, 100)
	require.NoError(t, err)
	require.Len(t, all.Records, 5)
	require.False(t, all.More)
	require.Equal(t, at.Truncate(Precision), all.Records[0].DateAdded)
	for i := 1; i < len(all.Records); i++ {
		require.Equal(t, all.Records[i-1].DateAdded.Add(Precision), all.Records[i].DateAdded)
	}
	require.Equal(t, rec("indicator--1", v).Raw, all.Records[0].Raw, "byte for byte")

	for limit := 1; limit <= 6; limit++ {
		var got []string
		after := time.Time{}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			p, err := s.Query("c", Filter{AddedAfter: after}, limit)
			require.NoError(t, err)
			for _, r := range p.Records {
				got = append(got, r.ID)
			}
			if !p.More {
				break
			}
			require.Len(t, p.Records, limit)
			after = p.Records[len(p.Records)-1].DateAdded
		}
		require.Equal(t, []string{"indicator--1", "indicator--2", "indicator--3", "indicator--4", "indicator--5"}, got, "limit %d", limit)
	}
	p, err := s.Query("c", Filter{AddedAfter: all.Records[4].DateAdded}, 10)
	require.NoError(t, err)
	require.Empty(t, p.Records, "added_after is exclusive")
}

func TestStoreVersionsAndFilters(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	s := NewStore(clk, "c")
	v1, v2, v3 := clk.Now().Add(-3*time.Hour), clk.Now().Add(-2*time.Hour), clk.Now().Add(-time.Hour)
	// Versions arrive out of order: the version order is by modified,
	// not by date added.
	_, err := s.Add("c", []Record{rec("indicator--a", v2), rec("indicator--a", v3), rec("indicator--a", v1), rec("indicator--b", v1)})
	require.NoError(t, err)
	ids := func(f Filter) []string {
		p, err := s.Query("c", f, 100)
		require.NoError(t, err)
		var out []string
		for _, r := range p.Records {
			out = append(out, r.ID+"@"+r.Version.Format("15"))
		}
		return out
	}
	require.Equal(t, []string{"indicator--a@11", "indicator--b@09"}, ids(Filter{}), "last by default")
	require.Equal(t, []string{"indicator--a@11", "indicator--b@09"}, ids(Filter{Versions: []string{"last"}}))
	require.Equal(t, []string{"indicator--a@09", "indicator--b@09"}, ids(Filter{Versions: []string{"first"}}))
	require.Equal(t, []string{"indicator--a@10", "indicator--a@11", "indicator--a@09", "indicator--b@09"}, ids(Filter{Versions: []string{"all"}}))
	require.Equal(t, []string{"indicator--a@10"}, ids(Filter{IDs: []string{"indicator--a"}, Versions: []string{v2.Format(time.RFC3339Nano)}}))
	require.Empty(t, ids(Filter{Types: []string{"sighting"}}))
	require.Equal(t, []string{"indicator--b@09"}, ids(Filter{Keep: func(r *Record) bool { return r.ID == "indicator--b" }}))
	require.True(t, s.Has("c", "indicator--a", v2))
	require.False(t, s.Has("c", "indicator--a", v2.Add(time.Second)))
	_, err = s.Query("other", Filter{}, 1)
	require.ErrorIs(t, err, ErrNoCollection)
}

// A batch that could not be persisted is not visible, and a restore
// refuses records out of date-added order or held twice.
func TestStoreAppendAndRestore(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	s := NewStore(clk, "c")
	var persisted []Record
	fail := true
	s.Append = func(_ string, recs []Record) error {
		if fail {
			return errors.New("broker down")
		}
		persisted = append(persisted, recs...)
		return nil
	}
	_, err := s.Add("c", []Record{rec("indicator--1", clk.Now())})
	require.Error(t, err)
	p, err := s.Query("c", Filter{}, 10)
	require.NoError(t, err)
	require.Empty(t, p.Records, "nothing visible that was not persisted")
	fail = false
	_, err = s.Add("c", []Record{rec("indicator--1", clk.Now()), rec("indicator--2", clk.Now())})
	require.NoError(t, err)
	require.Len(t, persisted, 2)

	r := NewStore(clk, "c")
	require.NoError(t, r.Restore("c", persisted))
	p, err = r.Query("c", Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, p.Records, 2)
	require.Equal(t, persisted[1].DateAdded, p.Records[1].DateAdded)
	// New objects after a restore come after the restored ones.
	_, err = r.Add("c", []Record{rec("indicator--3", clk.Now())})
	require.NoError(t, err)
	p, err = r.Query("c", Filter{AddedAfter: persisted[1].DateAdded}, 10)
	require.NoError(t, err)
	require.Len(t, p.Records, 1)
	require.Equal(t, "indicator--3", p.Records[0].ID)

	bad := NewStore(clk, "c")
	require.Error(t, bad.Restore("c", []Record{persisted[1], persisted[0]}), "out of order")
	require.Error(t, NewStore(clk, "c").Restore("c", []Record{persisted[0], {ID: persisted[0].ID, Version: persisted[0].Version, DateAdded: persisted[1].DateAdded}}), "twice")
}

func TestStoreWait(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	s := NewStore(clk, "c")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Wait(ctx, "c", time.Time{}), context.DeadlineExceeded, "nothing added")
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background(), "c", time.Time{}) }()
	time.Sleep(10 * time.Millisecond)
	_, err := s.Add("c", []Record{rec("indicator--1", clk.Now())})
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after an add")
	}
	require.ErrorIs(t, s.Wait(context.Background(), "nope", time.Time{}), ErrNoCollection)
}
