package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGetJob(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	want := put(t, e.p, rec{id: "xq-7", state: certdv1.JobState_JOB_STATE_DEAD, lastError: "store: connection refused"})

	got, err := e.client.GetJob(ctx, &certdv1.GetJobRequest{Id: "xq-7"})
	if err != nil {
		t.Fatal(err)
	}
	want.RequestText = string(want.Request) // display only (view_test.go)
	if !proto.Equal(got.Job, want) {
		t.Errorf("GetJob = %v\nwant the whole record %v", got.Job, want)
	}
	_, err = e.client.GetJob(ctx, &certdv1.GetJobRequest{Id: "xq-8"})
	wantCode(t, err, codes.NotFound, "xq-8")
	_, err = e.client.GetJob(ctx, &certdv1.GetJobRequest{})
	wantCode(t, err, codes.InvalidArgument, "id")
	_, err = e.client.GetJob(ctx, &certdv1.GetJobRequest{Id: "a b/../c"})
	wantCode(t, err, codes.InvalidArgument, "not a job id")
}

func TestListJobsPagingAndFilters(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// 60 jobs, one minute apart; every third in course B, every fifth dead,
	// every seventh a remove, those after #40 submitted.
	for i := range 60 {
		r := rec{id: fmt.Sprintf("xq-%d", 1000+i), created: base.Add(time.Duration(i) * time.Minute),
			course: "course-v1:Org+A+1", user: fmt.Sprintf("u%d", i%4), state: certdv1.JobState_JOB_STATE_ANSWERED}
		if i%3 == 0 {
			r.course = "course-v1:Org+B+1"
		}
		if i%5 == 0 {
			r.state = certdv1.JobState_JOB_STATE_DEAD
		}
		if i%7 == 0 {
			r.action = certdv1.Action_ACTION_REMOVE
		}
		if i > 40 {
			r.source = certdv1.Source_SOURCE_SUBMIT
		}
		put(t, e.p, r)
	}

	// Default page size is 50, newest first.
	all, err := e.client.ListJobs(ctx, &certdv1.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Jobs) != control.DefaultPageSize || all.Total != 60 || all.NextPageToken == "" {
		t.Fatalf("default page: %d jobs, total %d, token %q; want 50, 60, a token", len(all.Jobs), all.Total, all.NextPageToken)
	}
	if all.Jobs[0].Id != "xq-1059" || all.Jobs[49].Id != "xq-1010" {
		t.Errorf("default page runs %s..%s, want xq-1059..xq-1010 (newest first)", all.Jobs[0].Id, all.Jobs[49].Id)
	}

	// Pages of 7 over course B (20 jobs): 7, 7, 6, then no token.
	f := &certdv1.JobFilter{CourseId: "course-v1:Org+B+1"}
	var seen []string
	token := ""
	var sizes []int
	for page := 0; ; page++ {
		resp, err := e.client.ListJobs(ctx, &certdv1.ListJobsRequest{Filter: f, PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if wantTotal := int64(min(page, 1) + 20); resp.Total != wantTotal {
			t.Errorf("page %d: total %d, want %d", page, resp.Total, wantTotal)
		}
		sizes = append(sizes, len(resp.Jobs))
		seen = append(seen, ids(resp.Jobs)...)
		if page == 0 {
			// A job created between pages appears on no later page and does
			// not shift them.
			put(t, e.p, rec{id: "xq-9999", course: "course-v1:Org+B+1", created: base.Add(24 * time.Hour)})
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	if !slices.Equal(sizes, []int{7, 7, 6}) {
		t.Errorf("page sizes %v, want [7 7 6]", sizes)
	}
	var want []string
	for i := 59; i >= 0; i-- {
		if i%3 == 0 {
			want = append(want, fmt.Sprintf("xq-%d", 1000+i))
		}
	}
	if !slices.Equal(seen, want) {
		t.Errorf("paged ids\n %v\nwant\n %v", seen, want)
	}

	// A token belongs to its filter; garbage is refused.
	_, err = e.client.ListJobs(ctx, &certdv1.ListJobsRequest{Filter: &certdv1.JobFilter{CourseId: "course-v1:Org+A+1"}, PageToken: all.NextPageToken})
	wantCode(t, err, codes.InvalidArgument, "different filter")
	_, err = e.client.ListJobs(ctx, &certdv1.ListJobsRequest{PageToken: "not-a-token!"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
	_, err = e.client.ListJobs(ctx, &certdv1.ListJobsRequest{PageSize: -1})
	wantCode(t, err, codes.InvalidArgument, "page_size")

	// Filters, alone and combined.
	count := func(f *certdv1.JobFilter) int64 {
		t.Helper()
		resp, err := e.client.ListJobs(ctx, &certdv1.ListJobsRequest{Filter: f, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(resp.Jobs)) != resp.Total {
			t.Errorf("filter %v: %d jobs on one page, total %d", f, len(resp.Jobs), resp.Total)
		}
		for _, j := range resp.Jobs {
			if f.CourseId != "" && j.CourseId != f.CourseId || f.Username != "" && j.Username != f.Username {
				t.Errorf("filter %v returned %s (%s, %s)", f, j.Id, j.CourseId, j.Username)
			}
		}
		return resp.Total
	}
	dead := []certdv1.JobState{certdv1.JobState_JOB_STATE_DEAD}
	for _, c := range []struct {
		name string
		f    *certdv1.JobFilter
		want int64
	}{
		{"dead", &certdv1.JobFilter{States: dead}, 12},
		{"dead or answered", &certdv1.JobFilter{States: append(dead, certdv1.JobState_JOB_STATE_ANSWERED)}, 60},
		{"remove", &certdv1.JobFilter{Action: certdv1.Action_ACTION_REMOVE}, 9},
		{"course A", &certdv1.JobFilter{CourseId: "course-v1:Org+A+1"}, 40},
		{"user u1", &certdv1.JobFilter{Username: "u1"}, 15},
		{"submitted", &certdv1.JobFilter{Source: certdv1.Source_SOURCE_SUBMIT}, 19},
		{"since #50", &certdv1.JobFilter{Since: timestamppb.New(base.Add(50 * time.Minute))}, 11},
		{"#10 to #20", &certdv1.JobFilter{Since: timestamppb.New(base.Add(10 * time.Minute)), Until: timestamppb.New(base.Add(20 * time.Minute))}, 10},
		{"dead in course B since #30", &certdv1.JobFilter{States: dead, CourseId: "course-v1:Org+B+1", Since: timestamppb.New(base.Add(30 * time.Minute))}, 2},
	} {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d jobs, want %d", c.name, got, c.want)
		}
	}
	_, err = e.client.ListJobs(ctx, &certdv1.ListJobsRequest{Filter: &certdv1.JobFilter{
		Since: timestamppb.New(base.Add(time.Hour)), Until: timestamppb.New(base)}})
	wantCode(t, err, codes.InvalidArgument, "since")
	_, err = e.client.ListJobs(ctx, &certdv1.ListJobsRequest{Filter: &certdv1.JobFilter{States: []certdv1.JobState{42}}})
	wantCode(t, err, codes.InvalidArgument, "states")
}

func TestRequeue(t *testing.T) {
	e := newEnv(t, control.WithStuckAfter(time.Hour))
	ctx := authed(t)
	since := time.Now().Add(-time.Hour)
	old := put(t, e.p, rec{id: "xq-1", course: "A", state: certdv1.JobState_JOB_STATE_DEAD, created: since.Add(-time.Hour)})
	dead2 := put(t, e.p, rec{id: "xq-2", course: "A", state: certdv1.JobState_JOB_STATE_DEAD, lastError: "store: timeout"})
	put(t, e.p, rec{id: "xq-3", course: "A", state: certdv1.JobState_JOB_STATE_ANSWERED})
	put(t, e.p, rec{id: "xq-4", course: "A", state: certdv1.JobState_JOB_STATE_RUNNING, worker: "consumer.host.42"})
	put(t, e.p, rec{id: "xq-5", course: "A"}) // ACCEPTED just now
	put(t, e.p, rec{id: "xq-6", course: "B", state: certdv1.JobState_JOB_STATE_DEAD})
	put(t, e.p, rec{id: "xq-7", course: "A", state: certdv1.JobState_JOB_STATE_RESULT_READY})

	// Dry run by filter: all dead jobs of course A since an hour ago.
	f := &certdv1.JobFilter{CourseId: "A", States: []certdv1.JobState{certdv1.JobState_JOB_STATE_DEAD}, Since: timestamppb.New(since)}
	dry, err := e.client.Requeue(ctx, &certdv1.RequeueRequest{Filter: f, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || !slices.Equal(dry.Requeued, []string{"xq-2"}) || len(dry.Skipped) != 0 {
		t.Fatalf("dry run = %v, want xq-2 only", dry)
	}
	if r := get(t, e.p, "xq-2"); !proto.Equal(r, dead2) {
		t.Errorf("dry run changed the record: %v", r)
	}
	if msgs := fetch(t, e.p, pipeline.JobsStream, pipeline.ConsumerName(certdv1.Action_ACTION_CREATE), 0); len(msgs) != 0 {
		t.Fatalf("dry run published %d jobs", len(msgs))
	}

	// By ids: only the held job goes; the others are skipped with reasons.
	resp, err := e.client.Requeue(ctx, &certdv1.RequeueRequest{Ids: []string{"xq-1", "xq-3", "xq-4", "xq-5", "xq-7", "xq-404", "xq-1", "../x"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.DryRun || !slices.Equal(resp.Requeued, []string{"xq-1"}) {
		t.Errorf("requeued %v, want [xq-1]", resp.Requeued)
	}
	wantReasons := map[string]string{
		"xq-3": "already answered", "xq-4": "running on consumer.host.42", "xq-5": "still being published",
		"xq-7": "waiting to be posted", "xq-404": "no such job", "../x": "not a job id",
	}
	got := reasons(resp.Skipped)
	if len(got) != len(wantReasons) {
		t.Errorf("skipped %v, want %v", got, wantReasons)
	}
	for id, w := range wantReasons {
		if !strings.Contains(got[id], w) {
			t.Errorf("skip reason of %s = %q, want it to say %q", id, got[id], w)
		}
	}

	r := get(t, e.p, "xq-1")
	last := r.History[len(r.History)-1]
	if r.State != certdv1.JobState_JOB_STATE_QUEUED || r.Generation != old.Generation+1 || r.Attempts != 0 || r.DeadAt != nil ||
		last.Note != "requeued by operator" || last.State != certdv1.JobState_JOB_STATE_QUEUED {
		t.Errorf("requeued record: state %s gen %d attempts %d dead_at %v last history %v", r.State, r.Generation, r.Attempts, r.DeadAt, last)
	}
	msgs := fetch(t, e.p, pipeline.JobsStream, pipeline.ConsumerName(certdv1.Action_ACTION_CREATE), 1)
	if len(msgs) != 1 {
		t.Fatalf("%d jobs published, want 1", len(msgs))
	}
	j := decodeJob(t, msgs[0])
	if j.Id != "xq-1" || j.Generation != 1 || j.DownloadUuid != old.DownloadUuid || j.VerifyUuid != old.VerifyUuid ||
		string(j.Request) != string(old.Request) {
		t.Errorf("published job %v; want xq-1 generation 1 with the record's uuids and request", j)
	}

	// Requeued once, it is queued now and a second requeue skips it.
	again, err := e.client.Requeue(ctx, &certdv1.RequeueRequest{Ids: []string{"xq-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Requeued) != 0 || !strings.Contains(reasons(again.Skipped)["xq-1"], "queued") {
		t.Errorf("second requeue = %v, want xq-1 skipped as queued", again)
	}

	// A job stuck ACCEPTED is requeued once it counts as stuck.
	eager := control.NewService(e.p, control.WithStuckAfter(0))
	resp, err = eager.Requeue(ctx, &certdv1.RequeueRequest{Ids: []string{"xq-5"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.Requeued, []string{"xq-5"}) {
		t.Errorf("stuck ACCEPTED job: %v", resp)
	}

	_, err = e.client.Requeue(ctx, &certdv1.RequeueRequest{})
	wantCode(t, err, codes.InvalidArgument, "ids or a non-empty filter")
}

func TestFail(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	dead := put(t, e.p, rec{id: "xq-1", user: "jdoe", course: "course-v1:a+b+c", state: certdv1.JobState_JOB_STATE_DEAD, lastError: "render: font missing"})
	put(t, e.p, rec{id: "sub-2", source: certdv1.Source_SOURCE_SUBMIT, state: certdv1.JobState_JOB_STATE_DEAD, lastError: "store: timeout"})
	put(t, e.p, rec{id: "xq-3", state: certdv1.JobState_JOB_STATE_RETRYING})

	dry, err := e.client.Fail(ctx, &certdv1.FailRequest{Ids: []string{"xq-1", "xq-3"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || !slices.Equal(dry.Failed, []string{"xq-1"}) || !strings.Contains(reasons(dry.Skipped)["xq-3"], "not held: retrying") {
		t.Errorf("dry run = %v", dry)
	}
	if msgs := fetch(t, e.p, pipeline.ResultsStream, pipeline.RelayXqueue, 0); len(msgs) != 0 {
		t.Fatalf("dry run published %d results", len(msgs))
	}

	resp, err := e.client.Fail(ctx, &certdv1.FailRequest{Ids: []string{"xq-1", "xq-3"}, Reason: "template withdrawn"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.Failed, []string{"xq-1"}) || len(resp.Skipped) != 1 {
		t.Errorf("Fail = %v", resp)
	}
	msgs := fetch(t, e.p, pipeline.ResultsStream, pipeline.RelayXqueue, 1)
	if len(msgs) != 1 {
		t.Fatalf("%d results published, want 1", len(msgs))
	}
	res := decodeResult(t, msgs[0])
	var ans map[string]string
	if err := json.Unmarshal(res.Answer, &ans); err != nil {
		t.Fatal(err)
	}
	if res.JobId != "xq-1" || res.Ok || res.Generation != dead.Generation || ans["error_reason"] != "template withdrawn" ||
		ans["username"] != "jdoe" || ans["course_id"] != "course-v1:a+b+c" || !strings.HasPrefix(ans["error"], "There was an error processing the certificate request: ") {
		t.Errorf("result %v, answer %v", res, ans)
	}
	if r := get(t, e.p, "xq-1"); r.State != certdv1.JobState_JOB_STATE_RESULT_READY || r.ErrorReason != "template withdrawn" {
		t.Errorf("failed record: state %s, error_reason %q", r.State, r.ErrorReason)
	}

	// By filter, without a reason: the last error becomes the reason, and
	// the result goes to the submit relay.
	resp, err = e.client.Fail(ctx, &certdv1.FailRequest{Filter: &certdv1.JobFilter{Source: certdv1.Source_SOURCE_SUBMIT}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.Failed, []string{"sub-2"}) {
		t.Errorf("Fail by filter = %v", resp)
	}
	msgs = fetch(t, e.p, pipeline.ResultsStream, pipeline.RelaySubmit, 1)
	if len(msgs) != 1 || !strings.Contains(decodeResult(t, msgs[0]).ErrorReason, "store: timeout") {
		t.Fatalf("submit result: %d messages", len(msgs))
	}
	// Already failed: skipped.
	resp, err = e.client.Fail(ctx, &certdv1.FailRequest{Ids: []string{"xq-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Failed) != 0 || !strings.Contains(reasons(resp.Skipped)["xq-1"], "not held") {
		t.Errorf("second Fail = %v", resp)
	}
}

func TestPauseAndResumeIntake(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	st, err := e.client.PauseIntake(ctx, &certdv1.PauseIntakeRequest{Reason: "LMS maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || st.Reason != "LMS maintenance" || st.Since == nil {
		t.Errorf("PauseIntake = %v", st)
	}
	// The switch the bridge reads says paused.
	if in, err := e.p.Intake(ctx); err != nil || !in.Paused || in.Reason != "LMS maintenance" {
		t.Errorf("intake switch = %v, %v", in, err)
	}
	if s, err := e.client.GetStatus(ctx, &certdv1.GetStatusRequest{}); err != nil || !s.IntakePaused {
		t.Errorf("status while paused: %v, %v", s, err)
	}
	st, err = e.client.ResumeIntake(ctx, &certdv1.ResumeIntakeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Paused {
		t.Errorf("ResumeIntake = %v", st)
	}
	if in, err := e.p.Intake(ctx); err != nil || in.Paused {
		t.Errorf("intake switch after resume = %v, %v", in, err)
	}
}

func TestSubmit(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	resp, err := e.client.Submit(ctx, &certdv1.SubmitRequest{
		Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo", CourseName: "Demo", Name: "Jane Doe",
		Grade: "Pass", IssuedDate: "2026-02-02", CallbackUrl: "https://hooks.example.org/certs?x=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Id, "sub-") || !lms.IsUUID(strings.TrimPrefix(resp.Id, "sub-")) {
		t.Errorf("id %q, want sub-<32 hex>", resp.Id)
	}
	r := get(t, e.p, resp.Id)
	if r.Source != certdv1.Source_SOURCE_SUBMIT || r.State != certdv1.JobState_JOB_STATE_QUEUED || r.Action != certdv1.Action_ACTION_CREATE ||
		!lms.IsUUID(r.DownloadUuid) || !lms.IsUUID(r.VerifyUuid) || r.CallbackUrl != "https://hooks.example.org/certs?x=1" ||
		r.Username != "jdoe" || r.CourseId != "course-v1:edX+DemoX+Demo" {
		t.Errorf("record %v", r)
	}
	if !proto.Equal(resp.Job, r) {
		t.Errorf("Submit returned %v, record is %v", resp.Job, r)
	}
	states := []certdv1.JobState{}
	for _, h := range r.History {
		states = append(states, h.State)
	}
	if !slices.Equal(states, []certdv1.JobState{certdv1.JobState_JOB_STATE_ACCEPTED, certdv1.JobState_JOB_STATE_QUEUED}) {
		t.Errorf("history %v, want ACCEPTED, QUEUED", states)
	}
	req, err := lms.ParseRequest(r.Request)
	if err != nil || req.Action != "create" || req.Name != "Jane Doe" || req.Grade != "Pass" || req.IssuedDate != "2026-02-02" || req.CourseName != "Demo" {
		t.Errorf("stored request %s: %+v, %v", r.Request, req, err)
	}
	msgs := fetch(t, e.p, pipeline.JobsStream, pipeline.ConsumerName(certdv1.Action_ACTION_CREATE), 1)
	if len(msgs) != 1 {
		t.Fatalf("%d jobs published", len(msgs))
	}
	if j := decodeJob(t, msgs[0]); j.Id != resp.Id || j.Source != certdv1.Source_SOURCE_SUBMIT || j.DownloadUuid != r.DownloadUuid {
		t.Errorf("published %v", j)
	}

	// A remove naming the uuids of the learner's own certificate goes to
	// the remove subject.
	rm, err := e.client.Submit(ctx, &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo", DeleteDownloadUuid: r.DownloadUuid, DeleteVerifyUuid: r.VerifyUuid})
	if err != nil {
		t.Fatal(err)
	}
	if msgs := fetch(t, e.p, pipeline.JobsStream, pipeline.ConsumerName(certdv1.Action_ACTION_REMOVE), 1); len(msgs) != 1 || decodeJob(t, msgs[0]).Id != rm.Id {
		t.Errorf("remove job not published on its subject")
	}

	ok := &certdv1.SubmitRequest{Username: "jdoe", CourseId: "course-v1:a+b+c", Name: "Jane"}
	for _, c := range []struct {
		name   string
		change func(*certdv1.SubmitRequest)
		want   string
	}{
		{"no username", func(r *certdv1.SubmitRequest) { r.Username = "" }, "username"},
		{"no course", func(r *certdv1.SubmitRequest) { r.CourseId = "  " }, "course_id"},
		{"no name", func(r *certdv1.SubmitRequest) { r.Name = " " }, "name"},
		{"long name", func(r *certdv1.SubmitRequest) { r.Name = strings.Repeat("x", 301) }, "name"},
		{"unknown action", func(r *certdv1.SubmitRequest) { r.Action = 9 }, "action"},
		{"bad regen uuid", func(r *certdv1.SubmitRequest) {
			r.Action, r.DeleteDownloadUuid = certdv1.Action_ACTION_REGEN, "../../etc"
		}, "delete_download_uuid"},
		{"remove without uuids", func(r *certdv1.SubmitRequest) { r.Action = certdv1.Action_ACTION_REMOVE }, "delete_download_uuid"},
		{"ftp callback", func(r *certdv1.SubmitRequest) { r.CallbackUrl = "ftp://example.org/x" }, "callback_url"},
		{"create with uuids", func(r *certdv1.SubmitRequest) { r.DeleteVerifyUuid = lms.NewUUID() }, "regen and remove"},
		{"relative callback", func(r *certdv1.SubmitRequest) { r.CallbackUrl = "/hook" }, "callback_url"},
		{"hostless callback", func(r *certdv1.SubmitRequest) { r.CallbackUrl = "http:///hook" }, "callback_url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := proto.Clone(ok).(*certdv1.SubmitRequest)
			c.change(r)
			_, err := e.client.Submit(ctx, r)
			wantCode(t, err, codes.InvalidArgument, c.want)
		})
	}
	// A remove or regen may only name uuids that job records tie to the
	// same username and course id.
	for _, c := range []struct {
		name string
		req  *certdv1.SubmitRequest
		want string
	}{
		{"another learner's certificate", &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "mallory", CourseId: "course-v1:edX+DemoX+Demo", DeleteDownloadUuid: r.DownloadUuid}, "another username"},
		{"another course", &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "jdoe", CourseId: "course-v1:edX+Other+2026", DeleteVerifyUuid: r.VerifyUuid}, "another username"},
		{"regen of another learner's", &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REGEN, Username: "mallory", CourseId: "course-v1:edX+DemoX+Demo", Name: "M", DeleteVerifyUuid: r.VerifyUuid}, "another username"},
		{"unknown uuid", &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo", DeleteDownloadUuid: lms.NewUUID()}, "no job"},
		{"own and unknown", &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo", DeleteDownloadUuid: r.DownloadUuid, DeleteVerifyUuid: lms.NewUUID()}, "no job"},
		{"uuids swapped", &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo", DeleteDownloadUuid: r.VerifyUuid}, "no job"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.Submit(ctx, c.req)
			wantCode(t, err, codes.PermissionDenied, c.want)
		})
	}
	// Nothing was recorded for the refused requests.
	list, err := e.client.ListJobs(ctx, &certdv1.ListJobsRequest{})
	if err != nil || list.Total != 2 {
		t.Errorf("jobs after refused submits: %v, %v; want 2", list.GetTotal(), err)
	}
	// The learner's own regen is allowed.
	if _, err := e.client.Submit(ctx, &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REGEN, Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo", Name: "Jane Doe", DeleteDownloadUuid: r.DownloadUuid, DeleteVerifyUuid: r.VerifyUuid}); err != nil {
		t.Errorf("own regen: %v", err)
	}
}

func TestWatchJobs(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := e.client.WatchJobs(wctx, &certdv1.WatchJobsRequest{Filter: &certdv1.JobFilter{CourseId: "course-v1:X+Y+Z"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // the watch is live
		t.Fatal(err)
	}
	submit := func(course string) string {
		t.Helper()
		r, err := e.client.Submit(ctx, &certdv1.SubmitRequest{Username: "u", CourseId: course, Name: "N"})
		if err != nil {
			t.Fatal(err)
		}
		return r.Id
	}
	first := submit("course-v1:X+Y+Z")
	submit("course-v1:Other+Y+Z")
	second := submit("course-v1:X+Y+Z")
	// Quick successive changes of one job may reach a watcher coalesced (a
	// KV watch delivers the latest value), but each job's latest state
	// always arrives, in the order the changes were made, and the record in
	// the event carries the whole history.
	recv := func() *certdv1.JobEvent {
		t.Helper()
		ev, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Job.GetId() != ev.Id || ev.Job.State != ev.State || ev.At == nil {
			t.Errorf("event %v does not describe its job", ev)
		}
		return ev
	}
	latest := map[string]certdv1.JobState{}
	for latest[first] != certdv1.JobState_JOB_STATE_QUEUED || latest[second] != certdv1.JobState_JOB_STATE_QUEUED {
		ev := recv()
		if ev.Id != first && ev.Id != second {
			t.Fatalf("event for %s (%s), outside the filter", ev.Id, ev.Job.CourseId)
		}
		if ev.State < latest[ev.Id] || ev.State > certdv1.JobState_JOB_STATE_QUEUED {
			t.Errorf("%s went from %s to %s", ev.Id, latest[ev.Id], ev.State)
		}
		if ev.Id == second && latest[first] != certdv1.JobState_JOB_STATE_QUEUED {
			t.Errorf("event of %s before %s was queued", second, first)
		}
		latest[ev.Id] = ev.State
		if ev.State == certdv1.JobState_JOB_STATE_QUEUED {
			var hist []certdv1.JobState
			for _, h := range ev.Job.History {
				hist = append(hist, h.State)
			}
			if !slices.Equal(hist, []certdv1.JobState{certdv1.JobState_JOB_STATE_ACCEPTED, certdv1.JobState_JOB_STATE_QUEUED}) {
				t.Errorf("history in the event of %s: %v", ev.Id, hist)
			}
		}
	}

	// An operator's requeue of a held job shows up too.
	put(t, e.p, rec{id: "xq-5", course: "course-v1:X+Y+Z", state: certdv1.JobState_JOB_STATE_DEAD})
	for ev := recv(); ev.State != certdv1.JobState_JOB_STATE_DEAD; ev = recv() {
		if ev.Id != "xq-5" || ev.State != certdv1.JobState_JOB_STATE_ACCEPTED {
			t.Fatalf("event %s %s, want xq-5 ACCEPTED or DEAD", ev.Id, ev.State)
		}
	}
	if _, err := e.client.Requeue(ctx, &certdv1.RequeueRequest{Ids: []string{"xq-5"}}); err != nil {
		t.Fatal(err)
	}
	if ev := recv(); ev.Id != "xq-5" || ev.State != certdv1.JobState_JOB_STATE_QUEUED || ev.Job.History[len(ev.Job.History)-1].Note != "requeued by operator" {
		t.Errorf("event after requeue: %v", ev)
	}
	cancel()
	if _, err := stream.Recv(); err == nil {
		t.Error("stream still open after the client went away")
	}
	// A fresh watch ends when the server stops; Serve does not wait for it.
	stream, err = e.client.WatchJobs(ctx, &certdv1.WatchJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	e.stop()
	if _, err := stream.Recv(); err == nil {
		t.Error("stream still open after the server stopped")
	}
}

// TestSubmitWithRequestIDIsIdempotent: a client that retries a Submit with
// the same request_id gets the same job, not a second certificate.
func TestSubmitWithRequestIDIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := authed(t)
	req := &certdv1.SubmitRequest{Username: "jdoe", CourseId: "course-v1:a+b+c", Name: "Jane", RequestId: "order-4711"}
	first, err := e.client.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Id != first.Id || again.Job.DownloadUuid != first.Job.DownloadUuid {
		t.Errorf("retry made job %s, first was %s", again.Id, first.Id)
	}
	if n, err := e.p.JobsPending(ctx); err != nil || n != 1 {
		t.Errorf("%d jobs published for one request id (%v)", n, err)
	}
	other := proto.Clone(req).(*certdv1.SubmitRequest)
	other.Name = "Someone Else"
	if _, err := e.client.Submit(ctx, other); status.Code(err) != codes.AlreadyExists {
		t.Errorf("request id reused for another request: %v, want AlreadyExists", err)
	}
}
