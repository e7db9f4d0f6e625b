// Package statuslist implements W3C Bitstring Status List v1.0 for certd's
// revocations: the bitstring and its encodedList form, the status list
// credential (unsigned; sign it with internal/credential), and Store, the
// one compare-and-set owner of the bits in a JetStream key-value bucket.
//
// Invariants:
//   - A list has exactly MinBits bits (16 KiB); bit i is byte i>>3, mask
//     0x80>>(i&7) (the first index is the left-most bit).
//   - encodedList is "u" + base64url without padding of gzip(bits).
//   - A bit, once set, is never cleared: revocation is final.
//   - Every change of the bits is a compare-and-set on the bucket entry's
//     revision, so concurrent revocations from any number of processes never
//     lose each other.
//   - An index is handed out once per list (Allocate creates a key per
//     index; creation fails if another caller got it first).
package statuslist

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// MinBits is the size of every list: the specification's minimum, which
// gives group privacy (131,072 entries).
const MinBits = 131072

// ListBytes is the size of the raw bitstring.
const ListBytes = MinBits / 8

// Bits is a status bitstring of ListBytes bytes.
type Bits []byte

// NewBits returns an all-zero list.
func NewBits() Bits { return make(Bits, ListBytes) }

// Get reports bit i.
func (b Bits) Get(i int) (bool, error) {
	if i < 0 || i >= len(b)*8 {
		return false, fmt.Errorf("status index %d outside the list of %d bits", i, len(b)*8)
	}
	return b[i>>3]&(0x80>>(i&7)) != 0, nil
}

// Set sets bit i and reports whether it changed.
func (b Bits) Set(i int) (bool, error) {
	if i < 0 || i >= len(b)*8 {
		return false, fmt.Errorf("status index %d outside the list of %d bits", i, len(b)*8)
	}
	m := byte(0x80 >> (i & 7))
	if b[i>>3]&m != 0 {
		return false, nil
	}
	b[i>>3] |= m
	return true, nil
}

// Encode returns the encodedList form of b.
func Encode(b Bits) (string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(b); err != nil {
		return "", fmt.Errorf("encode status list: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("encode status list: %w", err)
	}
	return "u" + base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

// maxEncoded bounds what Decode reads: 16 MiB of bits at most.
const maxDecodedBytes = 16 << 20

// Decode parses an encodedList. It accepts lists of at least MinBits bits
// and refuses anything that inflates beyond 16 MiB.
func Decode(s string) (Bits, error) {
	if len(s) < 2 || s[0] != 'u' {
		return nil, errors.New("encodedList: not base64url multibase (no 'u' prefix)")
	}
	if len(s) > maxDecodedBytes {
		return nil, errors.New("encodedList: too long")
	}
	z, err := base64.RawURLEncoding.DecodeString(s[1:])
	if err != nil {
		return nil, fmt.Errorf("encodedList: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("encodedList: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, maxDecodedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("encodedList: %w", err)
	}
	if len(b) > maxDecodedBytes {
		return nil, errors.New("encodedList: inflates beyond 16 MiB")
	}
	if len(b) < ListBytes {
		return nil, fmt.Errorf("encodedList: %d bits, fewer than %d", len(b)*8, MinBits)
	}
	return Bits(b), nil
}
