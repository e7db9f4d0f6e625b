package xqueuetest

import (
	"strings"

	"github.com/certd-dev/certd/internal/lms"
)

// pyString encodes s the way Python's json.dumps does with its defaults
// (ensure_ascii=True), as xqueue does: the stand-in answers byte for byte
// like xqueue so that clients are tested against the real encoding, not
// Go's. The encoder is the one certd uses to build LMS bodies.
func pyString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	lms.PyString(&b, s)
	return b.String()
}

// pyObject renders an object with Python's default separators (", " and
// ": "); values must already be encoded JSON.
func pyObject(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyString(kv[i]))
		b.WriteString(": ")
		b.WriteString(kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// reply is xqueue's compose_reply: {"return_code": 0|1, "content": ...}.
func reply(ok bool, content string) string {
	code := "1"
	if ok {
		code = "0"
	}
	return pyObject("return_code", code, "content", content)
}
