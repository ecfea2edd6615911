package policy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	as, _ := testApprovers(t)
	p, err := Default(as)
	require.NoError(t, err)
	d := p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "999999.99")})
	t.Logf("%+v %+v", d, d.Terms)
	d = p.Evaluate(Input{Intent: testIntent()})
	t.Logf("%+v %+v", d, d.Terms)
}
