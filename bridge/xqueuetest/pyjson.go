package xqueuetest

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// pyString encodes s the way Python's json.dumps does with its defaults
// (ensure_ascii=True): non-ASCII characters become \uXXXX escapes (with
// surrogate pairs above the BMP) and '<', '>', '&' stay as they are. The
// stand-in answers byte-for-byte like xqueue so that clients are tested
// against the real encoding, not Go's.
func pyString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			if r == 0x7f {
				b.WriteRune(r)
				continue
			}
			writeU(&b, r)
		case r >= 0x10000:
			r -= 0x10000
			writeU(&b, 0xd800+(r>>10))
			writeU(&b, 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeU(b *strings.Builder, r rune) {
	h := strconv.FormatInt(int64(r), 16)
	b.WriteString(`\u`)
	b.WriteString(strings.Repeat("0", 4-len(h)))
	b.WriteString(h)
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
