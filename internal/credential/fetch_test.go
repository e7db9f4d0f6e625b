package credential

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// certd verify's path end to end over HTTPS on loopback: the DID document at
// /.well-known/did.json of the issuer's host and the status list, served by
// a TLS server the fetcher's client trusts.
func TestCheckOverHTTPS(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	did, err := DIDWeb(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := NewDIDDocument(did, []IssuerKey{{Fragment: "key-1", Public: iss.priv.Public().(ed25519.PublicKey)}}, time.Now())
	didJSON, _ := doc.JSON()
	mux.HandleFunc("/.well-known/did.json", func(w http.ResponseWriter, _ *http.Request) { w.Write(didJSON) })
	b := testBadge(did)
	b.Status = nil
	b.ValidFrom = time.Now().Add(-time.Hour)
	cred, err := s.IssueOpenBadge(b, Signer{Key: iss.priv, VerificationMethod: did + "#key-1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fetch := HTTPFetcher(srv.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.Check(ctx, cred, nil, fetch, time.Now())
	if err != nil || res.Verdict != Valid {
		t.Fatalf("Check over HTTPS = %+v, %v", res, err)
	}
	if _, err := fetch(ctx, "http://example.org/did.json"); err == nil || !strings.Contains(err.Error(), "only https") {
		t.Fatalf("plain http to a public host: %v", err)
	}
	if _, err := fetch(ctx, srv.URL+"/missing"); err == nil {
		t.Fatal("a 404 was accepted")
	}
}
