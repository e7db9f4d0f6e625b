package credential

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/statuslist"
)

func mapFetcher(m map[string][]byte) Fetcher {
	return func(_ context.Context, u string) ([]byte, error) {
		if b, ok := m[u]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s: 404", u)
	}
}

func TestCheckVerdicts(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	now := time.Now()
	didURL, _ := DIDWebDocumentURL(iss.did)
	didJSON, _ := iss.doc.JSON()
	listURL := "https://certs.example.org/cert/status/1.json"
	bits := statuslist.NewBits()
	bits.Set(200)
	ul, _ := statuslist.BuildCredential(statuslist.List{URL: listURL, IssuerDID: iss.did, ValidFrom: now, TTL: time.Minute, Bits: bits})
	list, err := s.Sign(ul, iss.signer, now)
	if err != nil {
		t.Fatal(err)
	}
	pdf := []byte("%PDF-1.7 the certificate")
	issue := func(mod func(*Badge)) []byte {
		b := testBadge(iss.did)
		b.ValidFrom, b.ValidUntil = now.Add(-time.Hour), now.Add(time.Hour)
		b.PDFDigestSRI = DigestSRI(pdf)
		b.Status.ListURL, b.Status.Index = listURL, 100
		if mod != nil {
			mod(&b)
		}
		out, err := s.IssueOpenBadge(b, iss.signer, now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	valid := issue(nil)
	fetch := mapFetcher(map[string][]byte{didURL: didJSON, listURL: list})

	other, _ := GenerateKey()
	otherDoc, _ := NewDIDDocument(iss.did, []IssuerKey{{Fragment: "key-1", Public: other.Public().(ed25519.PublicKey)}}, now)
	otherJSON, _ := otherDoc.JSON()
	rotated, _ := NewDIDDocument(iss.did, []IssuerKey{{Fragment: "key-2", Public: other.Public().(ed25519.PublicKey)}}, now)
	rotatedJSON, _ := rotated.JSON()
	tamperedList := bytes.Replace(list, []byte(`"ttl": 60000`), []byte(`"ttl": 60001`), 1)

	dk, _ := GenerateKey()
	dkPub := dk.Public().(ed25519.PublicKey)
	bk := testBadge(DIDKey(dkPub))
	bk.Status = nil
	didKeyCred, err := s.IssueOpenBadge(bk, Signer{Key: dk, VerificationMethod: DIDKeyVerificationMethod(dkPub)}, now)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		cred  []byte
		pdf   []byte
		fetch Fetcher
		at    time.Time
		want  Verdict
	}{
		{"valid", valid, pdf, fetch, now, Valid},
		{"valid without PDF", valid, nil, fetch, now, Valid},
		{"did:key", didKeyCred, nil, mapFetcher(nil), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Valid},
		{"revoked", issue(func(b *Badge) { b.Status.Index = 200 }), pdf, fetch, now, Revoked},
		{"expired", valid, pdf, fetch, now.Add(2 * time.Hour), Expired},
		{"not yet valid", valid, pdf, fetch, now.Add(-2 * time.Hour), Expired},
		{"one byte changed", bytes.Replace(valid, []byte("87%"), []byte("88%"), 1), pdf, fetch, now, Tampered},
		{"other PDF", valid, append(pdf, ' '), fetch, now, Tampered},
		{"status list changed", valid, pdf, mapFetcher(map[string][]byte{didURL: didJSON, listURL: tamperedList}), now, Tampered},
		{"other key under the same id", valid, pdf, mapFetcher(map[string][]byte{didURL: otherJSON, listURL: list}), now, Tampered},
		{"key no longer listed", valid, pdf, mapFetcher(map[string][]byte{didURL: rotatedJSON, listURL: list}), now, WrongKey},
	} {
		res, err := s.Check(context.Background(), c.cred, c.pdf, c.fetch, c.at)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if res.Verdict != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, res.Verdict, res.Reason, c.want)
		}
	}
	if _, err := s.Check(context.Background(), valid, nil, mapFetcher(nil), now); err == nil {
		t.Error("an unreachable DID document gave a verdict instead of an error")
	}
	if u, idx, err := StatusOf(valid); err != nil || u != listURL || idx != 100 {
		t.Errorf("StatusOf = %s %d %v", u, idx, err)
	}
}
