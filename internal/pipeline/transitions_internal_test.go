package pipeline

import (
	"errors"
	"testing"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// TestUndoRows: the undo of a failed publish follows the table like every
// other change, and refuses anything else.
func TestUndoRows(t *testing.T) {
	l := &Lifecycle{p: &Pipeline{Records: NewRecords(nil)}}
	for s := range certdv1.JobState_name {
		for to := range certdv1.JobState_name {
			r := &certdv1.JobRecord{Id: "x", State: certdv1.JobState(s)}
			err := l.move(r, EventUndo, certdv1.JobState(to), "")
			want := Allowed(EventUndo, certdv1.JobState(s), certdv1.JobState(to))
			if (err == nil) != want || (err != nil && !errors.Is(err, ErrTransition)) {
				t.Errorf("undo %v -> %v: err %v, table says %v", certdv1.JobState(s), certdv1.JobState(to), err, want)
			}
			if err == nil && r.State != certdv1.JobState(to) {
				t.Errorf("undo %v -> %v left %v", certdv1.JobState(s), certdv1.JobState(to), r.State)
			}
		}
	}
}
