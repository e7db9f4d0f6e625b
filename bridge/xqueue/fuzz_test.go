package xqueue

import (
	"errors"
	"testing"
)

// The fuzz targets run their seed corpus in every `go test`; explore with
// e.g. `go test -fuzz=FuzzSubmissionReply ./bridge/xqueue/`.

func FuzzSubmissionReply(f *testing.F) {
	for _, seed := range []string{
		`{"return_code": 0, "content": "{\"xqueue_header\": \"{\\\"submission_id\\\": 1, \\\"submission_key\\\": \\\"0123456789abcdef0123456789abcdef\\\"}\", \"xqueue_body\": \"{\\\"action\\\": \\\"create\\\"}\", \"xqueue_files\": \"{}\"}"}`,
		`{"return_code": 0, "content": {"xqueue_header": "{\"submission_id\": \"7\", \"submission_key\": \"k\"}", "xqueue_body": "x"}}`,
		`{"return_code": 1, "content": "Queue 'certificates' is empty"}`,
		`{"return_code": 0, "content": "{\"xqueue_header\": \"{\\\"submission_id\\\": 1e400}\"}"}`,
		`{"return_code": 0, "content": "null"}`,
		`{"return_code": 0, "content": ""}`,
		`{"return_code": "1", "content": null}`,
		`{"return_code": 0, "content": 5}`,
		`[]`, `null`, ``, `{`, `<html>`,
		`{"return_code": 0, "content": "{\"xqueue_header\": \"{\\\"submission_id\\\": -3, \\\"submission_key\\\": \\\"k\\\"}\", \"xqueue_body\": \"{}\"}"}`,
		`{"return_code": 0, "content": "{\"xqueue_header\": \"{\\\"submission_id\\\": 9007199254740993.0, \\\"submission_key\\\": \\\"k\\\"}\", \"xqueue_body\": \"{}\"}"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := parseReply(body)
		if rejected(t, "parseReply", err) {
			return
		}
		if !rep.ok {
			return
		}
		sub, err := decodeSubmission(rep.content)
		if rejected(t, "decodeSubmission", err) {
			return
		}
		if sub.Header.SubmissionID <= 0 || sub.Header.SubmissionKey == "" {
			t.Fatalf("accepted an invalid header %+v", sub.Header)
		}
		// What we echo back must decode to the same header.
		if h, err := decodeHeader([]byte(EncodeHeader(sub.Header))); err != nil || h != sub.Header {
			t.Fatalf("EncodeHeader round trip: %+v %v", h, err)
		}
	})
}

func FuzzQueueLenReply(f *testing.F) {
	for _, seed := range []string{
		`{"return_code": 0, "content": 5}`,
		`{"return_code": 0, "content": "5"}`,
		`{"return_code": 0, "content": 5.0}`,
		`{"return_code": 0, "content": 1e300}`,
		`{"return_code": 0, "content": -1}`,
		`{"return_code": 0, "content": " 12 "}`,
		`{"return_code": 1, "content": "Valid queue names are: certificates"}`,
		`{"return_code": 0, "content": []}`,
		`{"return_code": 0}`,
		`5`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := parseReply(body)
		if rejected(t, "parseReply", err) {
			return
		}
		n, err := decodeQueueLen(rep.content)
		if rejected(t, "decodeQueueLen", err) {
			return
		}
		if n < 0 {
			t.Fatalf("negative length %d accepted", n)
		}
	})
}

func FuzzHeader(f *testing.F) {
	for _, seed := range []string{
		`{"submission_id": 1, "submission_key": "k"}`,
		`{"submission_id": "12", "submission_key": "k"}`,
		`{"submission_id": 1}`,
		`{"submission_id": null, "submission_key": null}`,
		`{"submission_id": 1.5, "submission_key": "k"}`,
		`[1, "k"]`,
		`"{}"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		h, err := decodeHeader(text)
		if rejected(t, "decodeHeader", err) {
			return
		}
		if h.SubmissionID <= 0 || h.SubmissionKey == "" {
			t.Fatalf("accepted %+v", h)
		}
	})
}

// rejected reports whether a decoder refused its input, failing the test if
// it did so with anything but ErrBadReply.
func rejected(t *testing.T, decoder string, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, ErrBadReply) {
		t.Fatalf("%s error %v does not wrap ErrBadReply", decoder, err)
	}
	return err != nil
}

// FuzzTooLargeRecovery: what is recovered from the start of a reply too
// large to read is either nothing or a usable header.
func FuzzTooLargeRecovery(f *testing.F) {
	for _, seed := range []string{
		`{"return_code": 0, "content": "{\"xqueue_header\": \"{\\\"submission_id\\\": 12, \\\"submission_key\\\": \\\"0123456789abcdef0123456789abcdef\\\"}\", \"xqueue_body\": \"{\\\"action\\\": \\\"create\\\", \\\"username\\\": \\\"jdoe\\\"`,
		`{"return_code": 0, "content": "{\"xqueue_header\": \"{\\\"submission_id\\\": 0, \\\"submission_key\\\": \\\"k\\\"}\"`,
		`submission_id: 99999999999999999999 submission_key: "x"`,
		``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, start []byte) {
		e := newTooLarge(start, 1)
		if e.Header.SubmissionID < 0 || (e.Header.SubmissionID > 0) != (e.Header.SubmissionKey != "") {
			t.Fatalf("recovered an unusable header %+v", e.Header)
		}
		if !errors.Is(e, ErrBadReply) || !errors.Is(e, ErrTooLarge) {
			t.Fatal("TooLargeError does not wrap ErrBadReply and ErrTooLarge")
		}
	})
}
