package failure_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/certd-dev/certd/internal/failure"
)

var errDisk = errors.New("disk full")

func TestKindTravelsWithTheError(t *testing.T) {
	err := fmt.Errorf("job x: %w", failure.E("store", failure.Invalid, errDisk))
	if got := failure.KindOf(err); got != failure.Invalid {
		t.Errorf("KindOf = %v, want invalid", got)
	}
	if !errors.Is(err, errDisk) {
		t.Error("the cause is not reachable with errors.Is")
	}
	if got := err.Error(); got != "job x: store: disk full" {
		t.Errorf("text %q", got)
	}
}

func TestUnclassifiedErrorsAreTransient(t *testing.T) {
	if got := failure.KindOf(errDisk); got != failure.Transient {
		t.Errorf("KindOf(plain) = %v, want transient", got)
	}
	if failure.Is(failure.Transient, nil) {
		t.Error("nil is no failure")
	}
}

func TestOutermostKindWins(t *testing.T) {
	inner := failure.E("post", failure.Transient, errDisk)
	outer := failure.E("relay", failure.Held, inner)
	if got := failure.KindOf(outer); got != failure.Held {
		t.Errorf("KindOf = %v, want held", got)
	}
	if got := failure.E("x", failure.Held, nil).Error(); got != "x: held" {
		t.Errorf("text %q", got)
	}
}
