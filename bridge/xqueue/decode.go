package xqueue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// reply is xqueue's envelope {"return_code": 0|1, "content": ...}.
type reply struct {
	ok      bool
	content json.RawMessage
}

// maxQuoted bounds how much of a bad reply is quoted in an error.
const maxQuoted = 120

// quote shortens b for an error message.
func quote(b []byte) string {
	if len(b) > maxQuoted {
		return strconv.Quote(string(b[:maxQuoted])) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}

// parseReply decodes the envelope. xqueue answers text/html, so the body is
// parsed whatever the Content-Type says. return_code may be a number or a
// numeric string; anything but 0 or 1 is a bad reply.
func parseReply(body []byte) (reply, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil || env == nil {
		return reply{}, fmt.Errorf("%w: not a JSON object: %s", ErrBadReply, quote(body))
	}
	rc, ok := env["return_code"]
	if !ok {
		return reply{}, fmt.Errorf("%w: no return_code in %s", ErrBadReply, quote(body))
	}
	content, ok := env["content"]
	if !ok {
		return reply{}, fmt.Errorf("%w: no content in %s", ErrBadReply, quote(body))
	}
	code, err := decodeInt(rc)
	if err != nil || (code != 0 && code != 1) {
		return reply{}, fmt.Errorf("%w: return_code %s is not 0 or 1", ErrBadReply, quote(rc))
	}
	return reply{ok: code == 0, content: content}, nil
}

// decodeInt accepts a JSON integer, an integral float, or a string holding
// one (numbers sent as strings are harmless to tolerate).
func decodeInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		raw = json.RawMessage(strings.TrimSpace(s))
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("not a number: %s", quote(raw))
	}
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("not an integer: %s", quote(raw))
	}
	return int64(f), nil
}

// decodeString decodes content that must be a JSON string.
func decodeString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: content is not a string: %s", ErrBadReply, quote(raw))
	}
	return s, nil
}

// decodeQueueLen decodes get_queuelen's content: a non-negative integer.
func decodeQueueLen(content json.RawMessage) (int, error) {
	n, err := decodeInt(content)
	if err != nil {
		return 0, fmt.Errorf("%w: queue length: %v", ErrBadReply, err)
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: queue length %d out of range", ErrBadReply, n)
	}
	return int(n), nil
}

// decodeHeader decodes an xqueue_header JSON text.
func decodeHeader(text []byte) (Header, error) {
	var h struct {
		ID  json.RawMessage `json:"submission_id"`
		Key json.RawMessage `json:"submission_key"`
	}
	if err := json.Unmarshal(text, &h); err != nil {
		return Header{}, fmt.Errorf("%w: xqueue_header is not a JSON object: %s", ErrBadReply, quote(text))
	}
	if h.ID == nil || h.Key == nil {
		return Header{}, fmt.Errorf("%w: xqueue_header lacks submission_id or submission_key: %s", ErrBadReply, quote(text))
	}
	id, err := decodeInt(h.ID)
	if err != nil || id <= 0 {
		return Header{}, fmt.Errorf("%w: xqueue_header submission_id %s is not a positive integer", ErrBadReply, quote(h.ID))
	}
	var key string
	if err := json.Unmarshal(h.Key, &key); err != nil || key == "" {
		return Header{}, fmt.Errorf("%w: xqueue_header submission_key %s is not a non-empty string", ErrBadReply, quote(h.Key))
	}
	return Header{SubmissionID: id, SubmissionKey: key}, nil
}

// decodeSubmission decodes get_submission's content: a JSON string that
// encodes {"xqueue_header": "<json>", "xqueue_body": "<json>",
// "xqueue_files": "<json>"}. The header is decoded; the body is kept as the
// text the LMS sent (not validated: the caller answers a bad job with an
// error result so that xqueue stops offering it).
func decodeSubmission(content json.RawMessage) (*Submission, error) {
	inner := []byte(content)
	if t := bytes.TrimSpace(content); len(t) > 0 && t[0] == '"' {
		s, err := decodeString(content)
		if err != nil {
			return nil, err
		}
		inner = []byte(s)
	} else if len(t) == 0 || t[0] != '{' {
		// An object in place of its encoding is harmless; anything else is not.
		return nil, fmt.Errorf("%w: get_submission content is not a JSON string: %s", ErrBadReply, quote(content))
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(inner, &payload); err != nil || payload == nil {
		return nil, fmt.Errorf("%w: get_submission payload is not a JSON object: %s", ErrBadReply, quote(inner))
	}
	field := func(name string, required bool) (string, error) {
		raw, ok := payload[name]
		if !ok || string(bytes.TrimSpace(raw)) == "null" {
			if required {
				return "", fmt.Errorf("%w: get_submission payload lacks %s", ErrBadReply, name)
			}
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: get_submission %s is not a JSON string: %s", ErrBadReply, name, quote(raw))
		}
		return s, nil
	}
	hdr, err := field("xqueue_header", true)
	if err != nil {
		return nil, err
	}
	body, err := field("xqueue_body", true)
	if err != nil {
		return nil, err
	}
	files, err := field("xqueue_files", false)
	if err != nil {
		return nil, err
	}
	h, err := decodeHeader([]byte(hdr))
	if err != nil {
		return nil, err
	}
	return &Submission{Header: h, Body: []byte(body), Files: files}, nil
}
