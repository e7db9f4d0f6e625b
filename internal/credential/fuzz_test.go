package credential

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Verify reads credentials from anywhere: no input makes it panic, and only
// the signed bytes verify.
func FuzzVerify(f *testing.F) {
	s, _ := NewSuite()
	iss := newTestIssuer(f)
	signed, err := s.IssueOpenBadge(testBadge(iss.did), iss.signer, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add([]byte(`{"@context":["https://www.w3.org/ns/credentials/v2"],"@type":{"@id":3},"proof":{"type":"DataIntegrityProof","cryptosuite":"eddsa-rdfc-2022","verificationMethod":"x","proofPurpose":"assertionMethod","proofValue":"z1"}}`))
	f.Add([]byte(`{"@context":{"@version":1.1,"a":{"@id":"http://a/","@container":"@list"}},"a":[[[1]],{"@list":[]}],"proof":{}}`))
	f.Add([]byte(`{"@context":[{"@vocab":"http://x/"}],"@graph":[{"@id":"_:b","p":{"@value":null}}],"proof":{"type":"DataIntegrityProof","cryptosuite":"eddsa-rdfc-2022","verificationMethod":"did:web:certs.example.org#key-1","proofPurpose":"assertionMethod","proofValue":"z3ez1"}}`))
	f.Add([]byte(`[]`))
	resolve := iss.doc.Resolver()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := s.Verify(b, resolve)
		if err == nil && string(b) != string(signed) {
			// Only whitespace-level changes of the signed document may verify.
			m1, e1 := decodeObject(b)
			m2, _ := decodeObject(signed)
			if e1 != nil || len(m1) != len(m2) {
				t.Fatalf("an unsigned document verified: %q", b)
			}
		}
	})
}

func TestRefusesTooManyBlankNodes(t *testing.T) {
	s, _ := NewSuite()
	var nodes []any
	for i := 0; i < MaxBlankNodes+1; i++ {
		nodes = append(nodes, map[string]any{"@id": fmt.Sprintf("_:n%d", i), "http://x.example/p": map[string]any{"@id": fmt.Sprintf("_:n%d", (i+1)%(MaxBlankNodes+1))}})
	}
	if _, err := s.canon.Canonicalize(map[string]any{"@graph": nodes}); !errors.Is(err, ErrTooComplex) {
		t.Fatalf("err = %v, want ErrTooComplex", err)
	}
}
