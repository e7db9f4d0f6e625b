package credential

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

const b58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var b58Index = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(b58Alphabet); i++ {
		t[b58Alphabet[i]] = int8(i)
	}
	return t
}()

// maxBase58Input bounds what the decoder accepts: keys and signatures are
// under 100 characters, and the algorithm is quadratic.
const maxBase58Input = 512

// base58Encode encodes b in the Bitcoin alphabet.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.37
	buf := make([]byte, (len(b)-zeros)*137/100+1)
	high := len(buf) - 1
	for _, c := range b[zeros:] {
		carry := int(c)
		j := len(buf) - 1
		for ; j > high || carry != 0; j-- {
			carry += 256 * int(buf[j])
			buf[j] = byte(carry % 58)
			carry /= 58
		}
		high = j
	}
	i := 0
	for i < len(buf) && buf[i] == 0 {
		i++
	}
	out := make([]byte, zeros+len(buf)-i)
	for k := 0; k < zeros; k++ {
		out[k] = '1'
	}
	for k, v := range buf[i:] {
		out[zeros+k] = b58Alphabet[v]
	}
	return string(out)
}

// base58Decode decodes a Bitcoin-alphabet string.
func base58Decode(s string) ([]byte, error) {
	if len(s) > maxBase58Input {
		return nil, fmt.Errorf("base58: %d characters, more than %d", len(s), maxBase58Input)
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	buf := make([]byte, len(s)*733/1000+1) // log(58)/log(256)
	for i := zeros; i < len(s); i++ {
		v := b58Index[s[i]]
		if v < 0 {
			return nil, fmt.Errorf("base58: invalid character %q", s[i])
		}
		carry := int(v)
		for j := len(buf) - 1; j >= 0; j-- {
			carry += 58 * int(buf[j])
			buf[j] = byte(carry)
			carry >>= 8
		}
		if carry != 0 {
			return nil, errors.New("base58: overflow")
		}
	}
	i := 0
	for i < len(buf) && buf[i] == 0 {
		i++
	}
	out := make([]byte, zeros+len(buf)-i)
	copy(out[zeros:], buf[i:])
	return out, nil
}

// Multicodec headers (varint-encoded) for Ed25519 keys in Multikey form.
var (
	ed25519PubHeader  = []byte{0xed, 0x01}
	ed25519PrivHeader = []byte{0x80, 0x26}
)

// PublicKeyMultibase encodes an Ed25519 public key the way Multikey and
// did:key do: 'z' + base58btc(0xed 0x01 || key). It always starts "z6Mk".
func PublicKeyMultibase(pub ed25519.PublicKey) string {
	return "z" + base58Encode(append(append([]byte{}, ed25519PubHeader...), pub...))
}

// ParsePublicKeyMultibase is the inverse of PublicKeyMultibase.
func ParsePublicKeyMultibase(s string) (ed25519.PublicKey, error) {
	b, err := decodeMultikey(s, ed25519PubHeader, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("public key multibase: %w", err)
	}
	return ed25519.PublicKey(b), nil
}

// PrivateKeyMultibase encodes the 32-byte seed of an Ed25519 private key as
// a Multikey secret key: 'z' + base58btc(0x80 0x26 || seed).
func PrivateKeyMultibase(priv ed25519.PrivateKey) string {
	return "z" + base58Encode(append(append([]byte{}, ed25519PrivHeader...), priv.Seed()...))
}

// ParsePrivateKeyMultibase is the inverse of PrivateKeyMultibase.
func ParsePrivateKeyMultibase(s string) (ed25519.PrivateKey, error) {
	b, err := decodeMultikey(s, ed25519PrivHeader, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("private key multibase: %w", err)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

func decodeMultikey(s string, header []byte, size int) ([]byte, error) {
	if len(s) < 2 || s[0] != 'z' {
		return nil, errors.New("not base58btc multibase (no 'z' prefix)")
	}
	b, err := base58Decode(s[1:])
	if err != nil {
		return nil, err
	}
	if len(b) != len(header)+size || b[0] != header[0] || b[1] != header[1] {
		return nil, fmt.Errorf("not an Ed25519 key of %d bytes with multicodec header %x", size, header)
	}
	return b[len(header):], nil
}
