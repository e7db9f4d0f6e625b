package control_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// stream, watch and server they start must be stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
