package xqueuetest_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
)

// A typical test: the LMS submits, the code under test pulls and answers,
// and the test awaits the LMS callback instead of sleeping.
func Example() {
	s := xqueuetest.NewServer(xqueuetest.WithLease(300 * time.Millisecond))
	defer s.Close()
	id := s.Submit(`{"action": "create", "username": "jdoe", "course_id": "course-v1:edX+DemoX+Demo_Course"}`)

	c, err := xqueue.New(xqueue.Config{
		BaseURL:  s.URL(),
		Username: xqueuetest.DefaultUsername,
		Password: xqueuetest.DefaultPassword,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Pull(ctx)
	if err != nil {
		panic(err)
	}
	if err := c.PutResult(ctx, sub.Header, []byte(`{"action": "create", "username": "jdoe"}`)); err != nil {
		panic(err)
	}

	cbs, err := s.WaitCallbacks(ctx, 1)
	if err != nil {
		panic(err)
	}
	var answer struct{ Action, Username string }
	_ = cbs[0].Decode(&answer)
	fmt.Println(cbs[0].SubmissionID == id, answer.Action, answer.Username, s.CallbackCount(id))
	// Output: true create jdoe 1
}
