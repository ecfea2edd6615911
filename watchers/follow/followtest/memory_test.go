package followtest_test

import (
	"testing"

	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

func TestSinkConformanceMemory(t *testing.T) {
	followtest.Sink(t, func(*testing.T) followtest.SinkUnderTest { return followtest.NewMemorySink().UnderTest() })
}
