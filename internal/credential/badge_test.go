package credential

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/statuslist"
)

// testIssuer is a did:web issuer with a fixed key (seed 1..32).
type testIssuer struct {
	did    string
	priv   ed25519.PrivateKey
	signer Signer
	doc    *DIDDocument
}

func newTestIssuer(t testing.TB) testIssuer {
	t.Helper()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	did, err := DIDWeb("https://certs.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := NewDIDDocument(did, []IssuerKey{{Fragment: "key-1", Public: priv.Public().(ed25519.PublicKey)}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return testIssuer{did: did, priv: priv, signer: Signer{Key: priv, VerificationMethod: did + "#key-1"}, doc: doc}
}

func testBadge(did string) Badge {
	return Badge{
		ID:          "https://certs.example.org/cert/0b8f3c1e-5d1a-4c1e-9a57-0d7c3f1f2a10/credential.json",
		Issuer:      Issuer{DID: did, Name: "Example Academy of Sciences", URL: "https://www.example.org/"},
		ValidFrom:   time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		ValidUntil:  time.Date(2028, 12, 1, 9, 30, 0, 0, time.UTC),
		Name:        "Certificate of completion: Introduction to Go",
		LearnerName: "Zoë Ångström-Nakamura",
		Achievement: Achievement{
			ID:          "https://certs.example.org/course/course-v1:Example+GO101+2026",
			Name:        "Introduction to Go",
			Description: "Types, concurrency and the standard library.",
			Criteria:    "Passed the graded assignments with at least 60%.",
		},
		Grade:        "87%",
		PDFURL:       "https://certs.example.org/downloads/0b8f3c1e/certificate.pdf",
		PDFDigestSRI: DigestSRI([]byte("%PDF-1.7 test bytes")),
		Status:       &StatusEntry{ListURL: "https://certs.example.org/cert/status/1.json", Index: 94567},
	}
}

func TestIssueAndVerifyOpenBadge(t *testing.T) {
	s, err := NewSuite()
	if err != nil {
		t.Fatal(err)
	}
	iss := newTestIssuer(t)
	signed, err := s.IssueOpenBadge(testBadge(iss.did), iss.signer, time.Date(2026, 12, 1, 9, 31, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(signed, &c); err != nil {
		t.Fatalf("signed credential is not JSON: %v\n%s", err, signed)
	}
	ctx, _ := json.Marshal(c["@context"])
	if string(ctx) != `["https://www.w3.org/ns/credentials/v2","https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]` {
		t.Fatalf("contexts %s", ctx)
	}
	st := c["credentialStatus"].(map[string]any)
	if st["statusListIndex"] != "94567" || st["statusPurpose"] != "revocation" {
		t.Fatalf("status entry %v", st)
	}
	if _, err := s.Verify(signed, iss.doc.Resolver()); err != nil {
		t.Fatalf("own credential does not verify: %v", err)
	}
	// Every canonical statement is present: the learner's name, grade, PDF
	// digest and status index are all signed.
	m, _ := decodeObject(signed)
	delete(m, "proof")
	nq, err := s.canon.Canonicalize(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Zoë Ångström-Nakamura", `"87%"`, "sha384-", `"94567"`, "#digestSRI", "Introduction to Go", "validUntil"} {
		if !strings.Contains(nq, want) {
			t.Errorf("canonical form lacks %q:\n%s", want, nq)
		}
	}
}

func TestTamperedCredentialIsRefused(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	signed, err := s.IssueOpenBadge(testBadge(iss.did), iss.signer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// One byte of the learner's name, of the grade, of the proof's date.
	for _, change := range [][2]string{{"Zoë", "Zoe"}, {"87%", "97%"}, {`"created": "20`, `"created": "21`}} {
		bad := bytes.Replace(signed, []byte(change[0]), []byte(change[1]), 1)
		if bytes.Equal(bad, signed) {
			t.Fatalf("%q not found", change[0])
		}
		if _, err := s.Verify(bad, iss.doc.Resolver()); !errors.Is(err, ErrBadSignature) {
			t.Errorf("changed %q to %q: err = %v, want ErrBadSignature", change[0], change[1], err)
		}
	}
	// Another key under the same verification method.
	other, _ := GenerateKey()
	otherDoc, _ := NewDIDDocument(iss.did, []IssuerKey{{Fragment: "key-1", Public: other.Public().(ed25519.PublicKey)}}, time.Now())
	if _, err := s.Verify(signed, otherDoc.Resolver()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: err = %v", err)
	}
}

// A term no context defines would be silently dropped by expansion; certd
// refuses to sign rather than sign less than the JSON shows.
func TestRefusesToSignDroppedTerms(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	doc, err := BuildOpenBadge(testBadge(iss.did))
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(m map[string]any){
		"undefined property":    func(m map[string]any) { m["courseCode"] = "GO101" },
		"undefined nested":      func(m map[string]any) { m["credentialSubject"].(map[string]any)["shoeSize"] = 42 },
		"undefined type":        func(m map[string]any) { m["type"] = []any{"VerifiableCredential", "OpenBadgeCredential", "FancyCert"} },
		"relative id":           func(m map[string]any) { m["id"] = "cert-17" },
		"relative resource url": func(m map[string]any) { m["relatedResource"].([]any)[0].(map[string]any)["id"] = "certificate.pdf" },
	} {
		m, _ := decodeObject(doc)
		edit(m)
		b, _ := json.Marshal(m)
		if _, err := s.Sign(b, iss.signer, time.Now()); !errors.Is(err, ErrDropped) {
			t.Errorf("%s: err = %v, want ErrDropped", name, err)
		}
	}
}

func TestLoaderRefusesNetwork(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	doc := []byte(`{"@context":["https://www.w3.org/ns/credentials/v2","https://example.org/unpinned.jsonld"],"type":["VerifiableCredential"],"issuer":"did:web:x","credentialSubject":{"id":"did:web:y"}}`)
	_, err := s.Sign(doc, iss.signer, time.Now())
	if err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("err = %v, want a refusal to fetch the unpinned context", err)
	}
}

func BenchmarkIssueOpenBadge(b *testing.B) {
	s, _ := NewSuite()
	iss := newTestIssuer(b)
	badge := testBadge(iss.did)
	now := time.Now()
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := s.IssueOpenBadge(badge, iss.signer, now); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// cpuClock measures the process's CPU time (user+system, all threads, GC
// included) over a benchmark loop: on a shared machine wall time per op
// includes waiting for a core, CPU time does not.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkSignStatusList(b *testing.B) {
	s, _ := NewSuite()
	iss := newTestIssuer(b)
	bits := statuslist.NewBits()
	for i := 0; i < 5000; i++ {
		bits.Set(i * 26)
	}
	now := time.Now()
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		ul, err := statuslist.BuildCredential(statuslist.List{URL: "https://certs.example.org/cert/status/1.json", IssuerDID: iss.did, ValidFrom: now, TTL: time.Minute, Bits: bits})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign(ul, iss.signer, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyOpenBadge(b *testing.B) {
	s, _ := NewSuite()
	iss := newTestIssuer(b)
	signed, _ := s.IssueOpenBadge(testBadge(iss.did), iss.signer, time.Now())
	r := iss.doc.Resolver()
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		if _, err := s.Verify(signed, r); err != nil {
			b.Fatal(err)
		}
	}
}

// One Suite is shared by every worker: concurrent signing gives the same
// bytes as signing alone (the cached contexts are read-only).
func TestConcurrentSigningIsDeterministic(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	want, err := s.IssueOpenBadge(testBadge(iss.did), iss.signer, created)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 10 {
				got, err := s.IssueOpenBadge(testBadge(iss.did), iss.signer, created)
				if err == nil && !bytes.Equal(got, want) {
					err = errors.New("concurrent signing gave other bytes")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Every credential signed in another second: no proof config cache hit.
func BenchmarkIssueOpenBadgeNoConfigCache(b *testing.B) {
	s, _ := NewSuite()
	iss := newTestIssuer(b)
	badge := testBadge(iss.did)
	now := time.Now()
	i := 0
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		i++
		if _, err := s.IssueOpenBadge(badge, iss.signer, now.Add(time.Duration(i)*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}
