package diagnose

import (
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
)

func TestMain(m *testing.M) { kindtest.Main(m) }
