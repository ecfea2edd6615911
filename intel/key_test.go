package intel

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
)

const testID = "indicator--479dacd3-a772-5d96-a52b-d2f8603cca51"

func TestParseKey(t *testing.T) {
	k, err := ParseKey([]byte("ofac:sanctioned_addresses_XBT/" + testID))
	require.NoError(t, err)
	require.Equal(t, Key{Feed: "ofac:sanctioned_addresses_XBT", ID: testID}, k)
	require.Equal(t, "ofac:sanctioned_addresses_XBT/"+testID, k.String())
	_, err = ParseKey([]byte(testID))
	require.ErrorIs(t, err, ErrLegacyKey)
	for _, bad := range []string{"", "/", "/" + testID, "ofac/", "ofac/indicator--x", "of/ac/" + testID, "-ofac/" + testID,
		"of ac/" + testID, "ofac/" + testID + "/", "ofac/INDICATOR--479DACD3-A772-5D96-A52B-D2F8603CCA51", "indicator--x",
		string(make([]byte, 129)) + "/" + testID} {
		_, err := ParseKey([]byte(bad))
		require.ErrorIs(t, err, ErrBadKey, "%q", bad)
	}
}

// FuzzDecodeRecord: any record of the indicator topic (key and value as
// a writer to Kafka chooses them) never panics the reader, and what it
// applies is a valid indicator whose feed and id are exactly its key's.
func FuzzDecodeRecord(f *testing.F) {
	in := ofacFeed(f, "XBT", 0).Indicators[0]
	v, err := json.Marshal(&in)
	require.NoError(f, err)
	f.Add([]byte(KeyOf(&in).String()), v, false)
	f.Add([]byte(in.ID), v, false)
	f.Add([]byte("csv:partner/"+in.ID), v, false)
	f.Add([]byte(KeyOf(&in).String()), []byte(nil), true)
	f.Add([]byte("ofac:XBT/"+testID+"/x"), []byte(`{"id":"`+testID+`","feed":"ofac:XBT"}`), false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		tp := &Topic{name: "fuzz"}
		k, got, ok := tp.decode(&kafka.Record{Key: key, Value: value})
		if !ok {
			require.Equal(t, int64(1), tp.Bad())
			return
		}
		require.Zero(t, tp.Bad())
		require.Equal(t, string(key), k.String(), "the key read is the record's")
		again, err := ParseKey([]byte(k.String()))
		require.NoError(t, err)
		require.Equal(t, k, again)
		if got == nil {
			require.Nil(t, value)
			return
		}
		require.Equal(t, k, KeyOf(got), "an applied record states its own key's indicator")
		valid := *got
		require.NoError(t, valid.Validate())
		require.Equal(t, *got, valid)
	})
}
