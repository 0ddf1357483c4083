package fluxinstall

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestMain(m *testing.M) {
	// controller-runtime's client complains on stderr, with a stack trace,
	// when no logger is set; the tests have nothing to say through it.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
