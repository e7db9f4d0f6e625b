package control_test

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// An operator reading a job with grpcurl (protojson) sees the LMS request
// and the answer as JSON text; a body that is not valid UTF-8 is shown
// escaped and can be decoded back byte for byte; the stored record is
// unchanged.
func TestJobBodiesAreShownAsText(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	put(t, e.p, rec{id: "xq-41"})
	bad := []byte("{\"xqueue_body\": \"caf\xe9 \xff\"}")
	stored := put(t, e.p, rec{id: "xq-42", state: certdv1.JobState_JOB_STATE_DEAD, answer: bad})

	got, err := e.client.GetJob(ctx, &certdv1.GetJobRequest{Id: "xq-42"})
	if err != nil {
		t.Fatal(err)
	}
	j := got.Job
	if j.RequestText != string(stored.Request) || j.RequestEscaped {
		t.Errorf("request_text = %q (escaped %v), want the JSON %s", j.RequestText, j.RequestEscaped, stored.Request)
	}
	if !j.AnswerEscaped {
		t.Errorf("answer with invalid UTF-8 not marked escaped: %q", j.AnswerText)
	}
	if back, err := strconv.Unquote(j.AnswerText); err != nil || back != string(bad) {
		t.Errorf("answer_text %q does not decode to the stored bytes (%q, %v)", j.AnswerText, back, err)
	}
	out, err := protojson.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Quote(string(stored.Request)); !strings.Contains(strings.ReplaceAll(string(out), `": `, `":`), `"requestText":`+want) {
		t.Errorf("grpcurl-style JSON does not show the request as text:\n%s", out)
	}

	list, err := e.client.ListJobs(ctx, &certdv1.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != 2 {
		t.Fatalf("ListJobs: %d jobs, want 2", len(list.Jobs))
	}
	for _, r := range list.Jobs {
		if r.RequestText == "" || r.RequestText != string(r.Request) {
			t.Errorf("ListJobs %s: request_text %q, want %q", r.Id, r.RequestText, r.Request)
		}
	}

	if r := get(t, e.p, "xq-42"); r.RequestText != "" || r.AnswerText != "" || r.AnswerEscaped {
		t.Errorf("display fields were stored: %v", r)
	}
}
