package credential

import (
	"net/url"
	"testing"
	"time"
)

func TestLinkedInAddToProfileURL(t *testing.T) {
	u := LinkedInAddToProfileURL(LinkedInCert{
		Name: "Certificate: Data Structures & Algorithms", OrganizationName: "Example University Online",
		Issued: time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC), URL: "https://certs.example.org/cert/5f0c/valid.html?x=1",
		ID: "5f0c6a52-8f0e-4c1b-9d1e-2b7a3c4d5e6f",
	})
	p, err := url.Parse(u)
	if err != nil || p.Host != "www.linkedin.com" || p.Path != "/profile/add" {
		t.Fatalf("%s: %v", u, err)
	}
	q := p.Query()
	for k, want := range map[string]string{
		"startTask": "CERTIFICATION_NAME", "name": "Certificate: Data Structures & Algorithms",
		"organizationName": "Example University Online", "issueYear": "2026", "issueMonth": "12",
		"certUrl": "https://certs.example.org/cert/5f0c/valid.html?x=1", "certId": "5f0c6a52-8f0e-4c1b-9d1e-2b7a3c4d5e6f",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Has("expirationYear") {
		t.Error("an expiry for a certificate that does not expire")
	}
}
